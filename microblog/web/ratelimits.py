"""Rate limits on routes, decided in PostgreSQL by one statement per request.

Routes declare the limits they add, by name:

    @limited(LOGIN_IP, LOGIN_USER)

and GLOBAL_IP applies to every route not marked @exempt. The numbers come from RATE_LIMITS
(microblog/ratelimit/rules.py), looked up by the limit's name; a rule that is off is not
checked. Those limits count requests, before the view runs. A limit on what a view makes
rather than on attempts (SIGNUP_IP: accounts) is spent by the view itself, around the write:

    async with spending(SIGNUP_IP) as slot:
        ...

quart-rate-limiter's store interface is a get followed by a set: two instances can both read
the same state and both admit, so under a race more requests than the limit get through. So
the hook and the decorators are our own, and every limit of a request is checked and counted by
one SQL statement (microblog/ratelimit/store.py), atomically per key. The library gives the 429
exception, which carries Retry-After.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from math import ceil
from typing import TypeVar

from quart import Quart, Response, current_app, g, request
from quart_rate_limiter import RateLimitExceeded

from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.pools import acquire
from microblog.ratelimit.rules import Rule
from microblog.ratelimit.store import Check, Verdict, admit, give_back
from microblog.web.forms import storable
from microblog.web.state import state

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable)
# Where the decorators leave their marks on a view function.
LIMITS = "microblog_rate_limits"
EXEMPT = "microblog_rate_exempt"


def client_subject() -> str:
    """The client's address; IPv6 clients by their /64, which one subscriber usually holds."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:  # a Unix socket peer, or the test client: one shared key
        return request.remote_addr or "unknown"
    if address.version == 4:  # IPv4Address has no ipv4_mapped
        return str(address)
    if address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


@dataclass(frozen=True)
class Limit:
    """A limit a request counts against: the RATE_LIMITS rule `name`, per subject."""

    name: str
    subject: Callable[[], Awaitable[str]]  # whom this request counts against
    methods: frozenset[str] | None = None  # only requests with these methods count; None: all


async def _ip() -> str:
    return client_subject()


async def _submitted_username() -> str:
    form = await request.form
    # Whatever was typed, as a key PostgreSQL can store: a NUL is no way around the limit.
    return storable(form.get("username", "").strip().lower()[:100])


async def _submitted_username_from_here() -> str:
    # The address first: it holds no space, so no typed name can pass for another pair.
    return f"{client_subject()} {await _submitted_username()}"


async def _user() -> str:
    user = g.get("user")
    return str(user.id) if user else client_subject()


POSTS = frozenset({"POST"})
LOGIN_IP = Limit("login_ip", _ip, POSTS)
# Guesses at one account: tightly from each address, so that guessing from one place slows
# that place only and the owner still gets in from theirs; loosely from everywhere at once,
# to bound guessing spread over many addresses.
LOGIN_USER_IP = Limit("login_user_ip", _submitted_username_from_here, POSTS)
LOGIN_USER = Limit("login_user", _submitted_username, POSTS)
# Accounts made per address, spent by the sign-up view: refused forms cost nothing here
# (GLOBAL_IP bounds attempts).
SIGNUP_IP = Limit("signup_ip", _ip)
POST_USER = Limit("post_user", _user, POSTS)
GLOBAL_IP = Limit("global_ip", _ip)


def limited(*limits: Limit) -> Callable[[View], View]:
    """The route counts against `limits` as well as GLOBAL_IP."""

    def mark(view: View) -> View:
        setattr(view, LIMITS, (*getattr(view, LIMITS, ()), *limits))
        return view

    return mark


def exempt(view: View) -> View:
    """The route counts against no limit at all, GLOBAL_IP included."""
    setattr(view, EXEMPT, True)
    return view


class RateLimits:
    def __init__(self, rules: dict[str, Rule]) -> None:
        self.rules = rules

    async def check(self) -> None:
        """Before the view: count the request against its limits, or refuse it with 429."""
        view = current_app.view_functions.get(request.endpoint)
        if view is None or getattr(view, EXEMPT, False):  # no route, or /up and static files
            return
        checks: list[Check] = []
        for limit in (*getattr(view, LIMITS, ()), GLOBAL_IP):
            rule = self.rules.get(limit.name)
            if rule is None or (limit.methods and request.method not in limit.methods):
                continue
            subject = await limit.subject()
            checks.append(Check(f"{rule.name}:{subject}", rule.inverse, rule.period))
        if checks:
            await _count(checks)

    async def add_headers(self, response: Response) -> Response:
        """RateLimit-* headers for the tightest limit the request was checked against."""
        if "rate_limit" in g:
            checks, verdicts = g.rate_limit
            verdict, check = min(_paired(verdicts, checks), key=lambda vc: vc[0].remaining(vc[1]))
            response.headers["RateLimit-Limit"] = str(round(check.period / check.inverse))
            response.headers["RateLimit-Remaining"] = str(verdict.remaining(check))
            response.headers["RateLimit-Reset"] = str(ceil(verdict.ahead))
        return response


async def _count(checks: list[Check]) -> bool:
    """Count the request against `checks`, or raise the 429 when any refuses. False when the
    counters could not be reached, and so nothing was counted."""
    try:
        async with acquire(state().pools.cache, 1.0) as conn:
            verdicts = await admit(conn, checks)
    except DATABASE_OUTAGE as error:
        # Without the shared counters, refusing everyone would turn a cache outage into a
        # site outage; admitting everyone is the lesser harm, and it is logged.
        log.warning("rate limits unavailable; admitting", extra={"error": type(error).__name__})
        return False
    earlier_checks, earlier_verdicts = g.get("rate_limit", ([], []))
    g.rate_limit = (earlier_checks + checks, earlier_verdicts + verdicts)
    refused = [(v, c) for v, c in _paired(verdicts, checks) if not v.admitted]
    if refused:
        for _, check in refused:  # keys are "rule:subject", as made above
            state().metrics.http.rate_limited[check.key.partition(":")[0]] += 1
        raise RateLimitExceeded(ceil(max(v.retry_after(c) for v, c in refused)))
    return True


class Slot:
    """One unit of a limit, taken for what a view is about to make."""

    def __init__(self) -> None:
        self.used = True

    def give_back(self) -> None:
        """Nothing was made after all (a name already taken): the slot does not count."""
        self.used = False


@asynccontextmanager
async def spending(limit: Limit) -> AsyncIterator[Slot]:
    """Take a slot of `limit` for what the block makes, or refuse with 429 before it runs.

    The slot is taken first, atomically, so requests racing for the last one cannot both
    have it; it is given back if the block raises or calls give_back(), so only what was
    made counts. A slot given back after a failure to reach the counters stays spent: the
    limit errs towards admitting fewer.
    """
    rule = next((r for r in state().settings.rate_limits if r.name == limit.name), None)
    slot = Slot()
    if rule is None:  # the rule is off
        yield slot
        return
    check = Check(f"{rule.name}:{await limit.subject()}", rule.inverse, rule.period)
    counted = await _count([check])
    try:
        yield slot
    except BaseException:
        slot.give_back()
        raise
    finally:
        if counted and not slot.used:
            await _give_back(check)


async def _give_back(check: Check) -> None:
    try:
        async with acquire(state().pools.cache, 1.0) as conn:
            await give_back(conn, [check])
    except DATABASE_OUTAGE as error:
        log.warning("rate limit slot not given back", extra={"error": type(error).__name__})


def _paired(verdicts: list[Verdict], checks: list[Check]) -> list[tuple[Verdict, Check]]:
    by_key = {check.key: check for check in checks}
    return [(verdict, by_key[verdict.key]) for verdict in verdicts]


def init_rate_limits(app: Quart, rules: Iterable[Rule]) -> None:
    by_name = {rule.name: rule for rule in rules}
    if not by_name:
        log.warning("RATE_LIMITS=off: every rate limit is disabled; use this for load tests only")
        return
    limits = RateLimits(by_name)
    app.before_request(limits.check)
    app.after_request(limits.add_headers)
