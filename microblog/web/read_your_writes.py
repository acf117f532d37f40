"""Read-your-writes: a visitor who has just written never reads from a replica behind it.

After each commit of a request the primary's WAL position is read on the committing
connection (db/transactions.py); once the request is done, the last one goes into the
visitor's signed session cookie, if they are logged in by then (a sign-up is) and it is not
already there. Their reads (web/db.reading) then go to a replica only once it has replayed
that far, and to the primary until then. The cookie is signed again only when the position
changes, that is after a write: anonymous visitors and readers carry nothing and are sent no
new cookie.
"""

from __future__ import annotations

from collections.abc import Callable

from quart import Quart, Response, g, has_request_context, session

from microblog.db.lsn import Lsn
from microblog.db.transactions import Transactions

POSITION = "wal"
# When the position after a write could not be read: past any position, so that this visitor's
# reads go to the primary until their next write records one.
UNKNOWN = Lsn(2**64 - 1)


def required_position() -> Lsn | None:
    """What a replica must have replayed to serve this visitor's reads; None: anything."""
    position = session.get(POSITION)  # signed, so ours: an int when present
    return Lsn(position) if isinstance(position, int) and not isinstance(position, bool) else None


def follow_writes(app: Quart, transactions: Transactions, *, carries: Callable[[], bool]) -> None:
    """Keep the position after each request's writes in the session of a visitor for whom
    `carries()` holds (the logged-in ones)."""

    def note(position: Lsn | None) -> None:
        if has_request_context():  # else a job's commit: jobs read on the primary
            g.wrote_up_to = max(g.get("wrote_up_to", 0), UNKNOWN if position is None else position)

    async def keep(response: Response) -> Response:
        position = g.get("wrote_up_to")
        if position is not None and carries() and session.get(POSITION) != position:
            session[POSITION] = position
        return response

    transactions.report_positions(note)
    app.after_request(keep)
