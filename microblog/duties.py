"""What follows a commit, in every process that writes: each duty and the changes it follows.

The writes say what they changed (db/transactions.py); this is where each duty subscribes.
"""

from __future__ import annotations

from microblog.cache.store import Cache
from microblog.config import Settings
from microblog.db.pools import Pools
from microblog.db.transactions import Transactions
from microblog.timelines import public_cache


def transactions_with_duties(settings: Settings, pools: Pools, cache: Cache) -> Transactions:
    """The transactions of a web or worker process, followed by the duties of both."""
    transactions = Transactions(pools)
    if settings.cache_enabled:
        transactions.on(public_cache.SHOWS, public_cache.invalidator(cache))
    return transactions
