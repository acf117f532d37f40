"""Users' rows kept in each web process, forgotten as soon as PostgreSQL says one changed.

Every page of a logged-in visitor needs their row and their live sessions: those decide
whether the session cookie still counts, and the navigation shows the name and unread count.
Reading them cost every page a round trip to PostgreSQL and about a tenth of a home page's
CPU in the app. Triggers (migrations 0009 and 0014) notify on every change to a row or to the
user's sessions, and each web process listens: a row is kept only while the listener is
connected, and a process that stops listening forgets every row, since it may miss changes.

A change made through this process is forgotten at once (sessions.py). One made elsewhere
(a password change or a log-out on another instance, a notification from a worker) reaches
this process a moment after its commit: for those milliseconds a request here sees the row as
it was, as a request that started just before the commit would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from microblog.cache.recent import Recent
from microblog.db.listen import Channel
from microblog.users.queries import Account

CHANNEL = "users_changed"
# A row is half a kilobyte: some megabytes for the visitors of the last minutes.
CAPACITY = 10_000

Load = Callable[[int], Awaitable[Account | None]]
Accepts = Callable[[Account], bool]


class KnownUsers:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._rows: Recent[int, Account] = Recent(capacity)
        self._listening = False
        # Counts every change heard of. A row read while the count moved may predate the
        # change (the notification can overtake the read), so it is not kept.
        self._changes = 0

    @property
    def listening(self) -> bool:
        return self._listening

    async def get(self, user_id: int, load: Load, accepts: Accepts | None = None) -> Account | None:
        """The user's row and sessions, from memory when known to be current, else load()'s.

        A kept account that `accepts` turns down is read again all the same: it may predate a
        change made through another instance a moment ago and not heard of yet (a log-in
        there, whose new session it does not hold), and a refusal must not rest on that.
        """
        if self._listening:  # else a change could go unheard
            account = self._rows.get(user_id)
            if account is not None and (accepts is None or accepts(account)):
                return account
        changes = self._changes
        account = await load(user_id)
        if account is not None and self._listening and changes == self._changes:
            self._rows[user_id] = account
        return account

    def forget(self, user_id: int) -> None:
        """This process changed the row (or may have): read it afresh next time."""
        self._changes += 1
        self._rows.pop(user_id, None)

    def channel(self) -> Channel:
        """What the process's listener (runtime.listening) hears changed rows on."""
        return Channel(CHANNEL, self._changed, on_listening=self._started, on_lost=self._stopped)

    def _changed(self, payload: str) -> None:
        if payload.isdecimal():
            self.forget(int(payload))
        else:  # the table was emptied
            self._forget_all()

    def _started(self) -> None:
        self._forget_all()  # rows may have changed while no one listened
        self._listening = True

    def _stopped(self) -> None:
        self._listening = False
        self._forget_all()

    def _forget_all(self) -> None:
        self._changes += 1
        self._rows.clear()
