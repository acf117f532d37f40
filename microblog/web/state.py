"""What an app holds for its lifetime, built once by create_app (microblog/app.py).

One typed object instead of a bag of names: every part of a request reads what it needs from
`state()`, and a misspelt field is an error where it is written, not a KeyError at run time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jinja2 import Environment
from quart import current_app

from microblog.cache.recent import Recent
from microblog.cache.store import Cache, CacheStats
from microblog.config import Settings
from microblog.db.pools import Pools
from microblog.db.transactions import Transactions
from microblog.metrics.process import ProcessMetrics

if TYPE_CHECKING:  # assets.py serves files through state(): no import at run time
    from microblog.live.hub import Hub
    from microblog.web.assets import StaticFiles

KEY = "microblog"


@dataclass(frozen=True)
class AppState:
    settings: Settings
    pools: Pools
    transactions: Transactions
    cache: Cache | None  # None with CACHE=off
    instance_name: str
    draining: asyncio.Event  # set when the instance stops taking traffic
    static_files: StaticFiles
    templates: Environment  # the app's templates, rendered synchronously (web/htmx.py)
    # Post cards this process drew lately, by what they show (posts/cards.py), and the
    # version of the code that draws them.
    local_cards: Recent[tuple, tuple[str, ...]]
    card_markup: str
    # The home page's empty compose form, drawn once (posts/compose.py), in pieces around its
    # form fields (web/templating.py).
    blank_compose: tuple[str, ...]
    live: Hub  # the process's live streams, fed from the events table (live/hub.py)
    card_stats: CacheStats  # how often local_cards had the card a page needed
    metrics: ProcessMetrics  # this process's, shared with its job side in combined mode


def state() -> AppState:
    return current_app.extensions[KEY]
