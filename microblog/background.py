"""Every job kind the workers run, and the recurring schedule: the one place to look."""

from __future__ import annotations

from datetime import timedelta

from microblog.account_deletion.jobs import erase
from microblog.cache.jobs import trim_cache
from microblog.config import Settings
from microblog.follows.jobs import followed
from microblog.jobs.builtin import ping, prune_dead_processes, prune_finished
from microblog.jobs.recurring import Recurring
from microblog.jobs.registry import JobRegistry
from microblog.live.jobs import trim_events
from microblog.post_pictures.jobs import prepare_picture
from microblog.posts.jobs import post_created, post_liked
from microblog.ratelimit.jobs import prune_rate_limits
from microblog.reposts.jobs import post_reposted

JOB_KINDS = JobRegistry(
    [
        ping,
        prune_finished,
        prune_dead_processes,
        post_created,
        post_liked,
        post_reposted,
        prepare_picture,
        erase,
        followed,
        trim_cache,
        prune_rate_limits,
        trim_events,
    ]
)


def recurring_jobs(settings: Settings) -> tuple[Recurring, ...]:
    return (
        Recurring(
            "prune-dead-processes",
            prune_dead_processes,
            every=timedelta(seconds=settings.heartbeat_interval),
            args={"silent_for": settings.heartbeat_timeout},
        ),
        Recurring(
            "trim-cache",
            trim_cache,
            every=timedelta(minutes=1),
            args={"max_entries": settings.cache_max_entries, "max_bytes": settings.cache_max_bytes},
        ),
        Recurring("prune-rate-limits", prune_rate_limits, every=timedelta(minutes=5)),
        Recurring(
            "trim-events",
            trim_events,
            every=timedelta(minutes=1),
            args={"older_than": settings.event_retention},
        ),
        Recurring(
            "prune-finished-jobs",
            prune_finished,
            every=timedelta(hours=1),
            args={"older_than": settings.job_retention},
        ),
    )
