"""The job that erases a closed account. It runs in one transaction, so it is all or
nothing, and a second run (or one after the first) finds nothing left to erase."""

from __future__ import annotations

from microblog.account_deletion.queries import erase_account
from microblog.jobs.registry import JobContext, job


@job("accounts.erase", max_attempts=8, timeout=600.0)
async def erase(ctx: JobContext, *, user_id: int) -> None:
    async with ctx.transaction() as conn:
        await erase_account(conn, user_id)
