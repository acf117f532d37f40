"""Rate limits on routes, declared with quart-rate-limiter, decided in PostgreSQL.

Routes declare named limits with quart-rate-limiter's decorator:

    @rate_limit(limits=[LOGIN_IP, LOGIN_USER])

and the app-wide GLOBAL_IP limit applies to every route not marked @rate_exempt. The numbers
come from RATE_LIMITS (see microblog/ratelimit/rules.py), looked up by name when the app is
built.

quart-rate-limiter's store interface is a get followed by a set: two instances can both read
the same state and both admit, so under a race more requests than the limit get through. Its
decision step is therefore replaced, at the depth where it is made: every limit of a request is
checked and counted by one SQL statement (microblog/ratelimit/store.py), atomically per key.
The library still provides the declarations, the exemptions and the 429 exception.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import timedelta
from math import ceil

from quart import Quart, Response, current_app, g, request
from quart_rate_limiter import RateLimit, RateLimiter, RateLimitExceeded

from microblog.db.outage import DATABASE_OUTAGE
from microblog.db.pools import acquire
from microblog.ratelimit.rules import DEFAULTS, Rule
from microblog.ratelimit.store import Check, Verdict, admit
from microblog.web.forms import storable
from microblog.web.state import state

log = logging.getLogger(__name__)


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


async def _ip() -> str:
    return client_subject()


async def _submitted_username() -> str:
    form = await request.form
    # Whatever was typed, as a key PostgreSQL can store: a NUL is no way around the limit.
    return storable(form.get("username", "").strip().lower()[:100])


async def _user() -> str:
    user = g.get("user")
    return str(user.id) if user else client_subject()


async def _unless_post() -> bool:
    return request.method != "POST"


@dataclass
class NamedLimit(RateLimit):
    """A limit whose numbers come from the RATE_LIMITS rule of the same name."""

    name: str = ""


def _named(name: str, key_function, skip_function=None) -> NamedLimit:
    rule = DEFAULTS[name]
    return NamedLimit(
        rule.count, timedelta(seconds=rule.period), key_function, skip_function, name=name
    )


LOGIN_IP = _named("login_ip", _ip, _unless_post)
LOGIN_USER = _named("login_user", _submitted_username, _unless_post)
SIGNUP_IP = _named("signup_ip", _ip, _unless_post)
POST_USER = _named("post_user", _user, _unless_post)
GLOBAL_IP = _named("global_ip", _ip)


class SharedRateLimiter(RateLimiter):
    def __init__(self, app: Quart, rules: dict[str, Rule]) -> None:
        self.rules = rules
        super().__init__(app, default_limits=[GLOBAL_IP])

    def _rule(self, limit: RateLimit) -> Rule | None:
        return self.rules.get(limit.name) if isinstance(limit, NamedLimit) else None

    async def _before_request(self) -> None:
        view = current_app.view_functions.get(request.endpoint)
        if view is None:
            return
        blueprint = current_app.blueprints.get(request.blueprint)
        checks: list[Check] = []
        for limit in self._get_limits_for_view_function(view, blueprint):
            rule = self._rule(limit)
            if rule is None or await self._should_skip(limit):
                continue
            subject = await (limit.key_function or self.key_function)()
            checks.append(Check(f"{rule.name}:{subject}", rule.inverse, rule.period))
        if not checks:
            return
        try:
            async with acquire(state().pools.cache, 1.0) as conn:
                verdicts = await admit(conn, checks)
        except DATABASE_OUTAGE as error:
            # Without the shared counters, refusing everyone would turn a cache outage into a
            # site outage; admitting everyone is the lesser harm, and it is logged.
            log.warning("rate limits unavailable; admitting", extra={"error": type(error).__name__})
            return
        g.rate_limit = (checks, verdicts)
        refused = [(v, c) for v, c in _paired(verdicts, checks) if not v.admitted]
        if refused:
            raise RateLimitExceeded(ceil(max(v.retry_after(c) for v, c in refused)))

    async def _after_request(self, response: Response) -> Response:
        """RateLimit-* headers for the tightest limit the request was checked against."""
        if "rate_limit" in g:
            checks, verdicts = g.rate_limit
            verdict, check = min(_paired(verdicts, checks), key=lambda vc: vc[0].remaining(vc[1]))
            response.headers["RateLimit-Limit"] = str(round(check.period / check.inverse))
            response.headers["RateLimit-Remaining"] = str(verdict.remaining(check))
            response.headers["RateLimit-Reset"] = str(ceil(verdict.ahead))
        return response


def _paired(verdicts: list[Verdict], checks: list[Check]) -> list[tuple[Verdict, Check]]:
    by_key = {check.key: check for check in checks}
    return [(verdict, by_key[verdict.key]) for verdict in verdicts]


def init_rate_limits(app: Quart, rules: dict[str, Rule]) -> None:
    if not rules:
        log.warning("RATE_LIMITS=off: every rate limit is disabled; use this for load tests only")
        return
    SharedRateLimiter(app, rules)
