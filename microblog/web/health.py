"""GET /up: what load balancers ask before sending an instance traffic.

200 with the instance name when the app is booted and PostgreSQL answers SELECT 1 within a
second; 503 when it does not, or once the instance has started draining. A line per replica
follows, saying whether reads use it: a replica never changes the status, since the primary
serves whatever the replicas cannot.
"""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response

from microblog.db.outage import DATABASE_OUTAGE
from microblog.web.ratelimits import exempt
from microblog.web.state import state

PROBE_TIMEOUT = 1.0

blueprint = Blueprint("health", __name__)


def _plain(text: str, status: int) -> Response:
    lines = [text, *state().pools.replicas.summaries()]
    body = "".join(line + "\n" for line in lines)
    response = Response(body, status=status, content_type="text/plain; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route("/up")
@exempt
async def up() -> Response:
    instance = state().instance_name
    if state().draining.is_set():
        return _plain(f"draining {instance}", 503)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            async with state().pools.primary.acquire() as conn:
                await conn.fetchval("SELECT 1")
    except DATABASE_OUTAGE:
        return _plain(f"database unavailable {instance}", 503)
    return _plain(f"ok {instance}", 200)
