"""The rate-limit rules and their RATE_LIMITS syntax: name=count/period, comma-separated."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_RULES = (
    "login_ip=10/1m,login_user_ip=5/1m,login_user=300/1h,signup_ip=5/30m,post_user=30/5m,"
    "global_ip=300/5m"
)
_PERIOD_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RULE = re.compile(r"^([a-z_]+)=(\d+)/(\d*)([smhd])$")


@dataclass(frozen=True)
class Rule:
    name: str
    count: int
    period: float  # seconds

    @property
    def inverse(self) -> float:
        """Seconds each admitted request adds to the key's theoretical arrival time."""
        return self.period / self.count

    def __str__(self) -> str:
        return f"{self.name}={self.count}/{self.period:g}s"


def _parse(text: str) -> dict[str, Rule]:
    rules = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        match = _RULE.match(item)
        if not match:
            raise ValueError(f"{item!r} is not name=count/period such as login_ip=10/1m")
        name, count, number, unit = match.groups()
        if int(count) < 1 or (number and int(number) < 1):
            raise ValueError(f"{item!r}: count and period must be at least 1")
        rules[name] = Rule(name, int(count), int(number or 1) * _PERIOD_UNITS[unit])
    return rules


DEFAULTS = _parse(DEFAULT_RULES)


def parse_rules(text: str) -> dict[str, Rule]:
    """The defaults with `text`'s overrides; 'off' gives no rules at all."""
    if text.strip().lower() == "off":
        return {}
    overrides = _parse(text)
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown rule {sorted(unknown)[0]!r}; rules are {', '.join(DEFAULTS)}")
    return {**DEFAULTS, **overrides}
