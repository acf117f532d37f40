"""What follows a commit, in every process that writes: each duty and the changes it follows.

The writes say what they changed (db/transactions.py); this is where each duty subscribes,
and where the rows that must commit with those changes (the live updates' events) are written.
"""

from __future__ import annotations

from microblog.cache.store import Cache
from microblog.config import Settings
from microblog.db.pools import Pools
from microblog.db.transactions import Transactions
from microblog.feeds import cached as cached_feeds
from microblog.live.publish import publish_events
from microblog.timelines import public_cache


def transactions_with_duties(settings: Settings, pools: Pools, cache: Cache) -> Transactions:
    """The transactions of a web or worker process, followed by the duties of both."""
    transactions = Transactions(pools)
    transactions.before_commit(publish_events)
    if settings.cache_enabled:
        transactions.on(public_cache.SHOWS, public_cache.invalidator(cache))
        transactions.on(cached_feeds.SHOWS, cached_feeds.invalidator(cache))
    return transactions
