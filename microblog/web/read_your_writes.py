"""Read-your-writes: a visitor who has just written never reads from a replica behind it.

After each commit made for a request, the primary's WAL position is read (one after-commit
callback, db/transactions.py); once the request is done, the last one goes into the visitor's
signed session cookie, if they are logged in by then (a sign-up is) and it is not already
there. Their reads (web/db.reading) then go to a replica only once it has replayed that far,
and to the primary until then. The cookie is signed again only when the position changes,
that is after a write: anonymous visitors and readers carry nothing and are sent no new cookie.
Commits outside a request (jobs) record nothing: jobs read on the primary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from quart import Quart, Response, g, has_request_context, session

from microblog.db.lsn import Lsn
from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.pools import acquire
from microblog.db.transactions import ACQUIRE_TIMEOUT, Transactions
from microblog.web.state import state

log = logging.getLogger(__name__)

POSITION = "wal"
# Past the commit's own record, whatever synchronous_commit says: the insert position, not the
# flushed one. Read once the commit is done, on the connection the commit has just freed: one
# round trip, as reading it on the committing connection would cost (docs/benchmarks.md, "Read
# replicas and PgBouncer"). Read inside the transaction, at no cost, it would come before the
# commit record, which a replica at that position has not replayed.
POSITION_NOW = "SELECT pg_current_wal_insert_lsn()"
# When the position after a write could not be read: past any position, so that this visitor's
# reads go to the primary until their next write records one.
UNKNOWN = Lsn(2**64 - 1)


def required_position() -> Lsn | None:
    """What a replica must have replayed to serve this visitor's reads; None: anything."""
    position = session.get(POSITION)  # signed, so ours: an int when present
    return Lsn(position) if isinstance(position, int) and not isinstance(position, bool) else None


def follow_writes(app: Quart, transactions: Transactions, *, carries: Callable[[], bool]) -> None:
    """Keep the position after each request's writes in the session of a visitor for whom
    `carries()` holds once the request is done (the logged-in ones)."""

    async def note_position() -> None:
        if has_request_context():  # else a job's commit: jobs read on the primary
            g.wrote_up_to = max(g.get("wrote_up_to", 0), await _position_now())

    async def keep(response: Response) -> Response:
        position = g.get("wrote_up_to")
        if position is not None and carries() and session.get(POSITION) != position:
            session[POSITION] = position
        return response

    transactions.on_every_commit(note_position)
    app.after_request(keep)


async def _position_now() -> Lsn:
    try:
        async with acquire(state().pools.primary, ACQUIRE_TIMEOUT) as conn:
            return Lsn(await conn.fetchval(POSITION_NOW)).as_replayed()
    except DATABASE_OUTAGE as error:  # the write has committed: its request must not fail now
        log.warning("WAL position after a commit unknown", extra={"error": type(error).__name__})
        return UNKNOWN
