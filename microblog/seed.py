"""`microblog seed`: a realistic demo or benchmark data set, loaded with COPY.

Real microblogs are uneven, and timelines behave differently when they are: a few accounts
post most of the posts and have most of the followers. Authors are therefore drawn from a
Zipf-like distribution and followees by popularity, and some posts are replies, mention
someone, or carry a hashtag. Every demo account's password is DEMO_PASSWORD.

The counts kept on rows (posts, replies, followers, following) are computed once at the end,
in the same transaction as the rows.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate

import asyncpg
from tqdm import tqdm

from microblog.posts.render import hashtags, mentions
from microblog.users.passwords import hash_password

DEMO_PASSWORD = "demo password"
BATCH = 10_000
WORDS = [
    "the",
    "a",
    "today",
    "just",
    "finally",
    "really",
    "new",
    "old",
    "small",
    "big",
    "quiet",
    "loud",
    "coffee",
    "tea",
    "rain",
    "sun",
    "morning",
    "evening",
    "train",
    "bike",
    "code",
    "deploy",
    "bug",
    "fix",
    "test",
    "release",
    "idea",
    "book",
    "film",
    "song",
    "city",
    "park",
    "dog",
    "cat",
    "garden",
    "kitchen",
    "office",
    "weekend",
    "holiday",
    "meeting",
    "lunch",
    "dinner",
    "walk",
    "run",
    "read",
    "write",
    "think",
    "wonder",
    "love",
    "hate",
    "like",
    "enjoy",
    "miss",
    "remember",
    "forget",
    "build",
    "break",
    "ship",
    "learn",
]
TAGS = [
    "python",
    "postgres",
    "music",
    "cats",
    "coffee",
    "travel",
    "books",
    "running",
    "weekend",
    "photography",
]


@dataclass(frozen=True)
class SeedPlan:
    users: int
    posts: int
    follows: int
    days: int = 30
    seed: int = 42


def _weights(count: int, exponent: float = 1.1) -> list[float]:
    """Cumulative Zipf-like weights: rank 1 is far more likely than rank 1000."""
    return list(accumulate(1.0 / (rank**exponent) for rank in range(1, count + 1)))


def _body(rng: random.Random, usernames: list[str], user_weights: list[float]) -> str:
    words = rng.choices(WORDS, k=rng.randint(4, 30))
    if rng.random() < 0.15:
        words.insert(
            rng.randrange(len(words) + 1), "@" + rng.choices(usernames, cum_weights=user_weights)[0]
        )
    if rng.random() < 0.2:
        words.append("#" + rng.choice(TAGS))
    return " ".join(words).capitalize()


def _post_rows(
    plan: SeedPlan, user_ids: list[int], first_post_id: int, usernames: list[str]
) -> Iterator[tuple]:
    rng = random.Random(plan.seed)
    weights = _weights(plan.users)
    start = datetime.now(UTC) - timedelta(days=plan.days)
    step = timedelta(days=plan.days) / max(plan.posts, 1)
    for n in range(plan.posts):
        author = rng.choices(user_ids, cum_weights=weights)[0]
        post_id = first_post_id + n
        # One post in ten replies to one of the 2,000 posts before it.
        reply_to = rng.randint(max(first_post_id, post_id - 2000), post_id - 1) if (
            n > 0 and rng.random() < 0.1) else None  # fmt: skip
        yield (post_id, author, _body(rng, usernames, weights), reply_to, start + step * n)


def _follow_rows(plan: SeedPlan, user_ids: list[int]) -> set[tuple[int, int]]:
    rng = random.Random(plan.seed + 1)
    weights = _weights(plan.users, exponent=0.9)
    pairs: set[tuple[int, int]] = set()
    limit = min(plan.follows, plan.users * (plan.users - 1))
    while len(pairs) < limit:
        follower = rng.choice(user_ids)
        followee = rng.choices(user_ids, cum_weights=weights)[0]
        if follower != followee:
            pairs.add((follower, followee))
    return pairs


async def seed(conn: asyncpg.Connection, plan: SeedPlan, *, progress: bool = True) -> None:
    """Insert the plan's users, posts and follows in one transaction."""
    password_hash = await hash_password(DEMO_PASSWORD)
    bar = tqdm(total=plan.users + plan.posts + plan.follows, unit="rows", disable=not progress)
    async with conn.transaction():
        prefix = await conn.fetchval(
            "SELECT 'user' || (coalesce(max(id), 0) + 1) || '_' FROM users"
        )
        usernames = [f"{prefix}{n}" for n in range(plan.users)]
        await conn.copy_records_to_table(
            "users",
            records=[(name, password_hash) for name in usernames],
            columns=["username", "password_hash"],
        )
        rows = await conn.fetch(
            "SELECT id, username FROM users WHERE username = ANY($1::text[]) ORDER BY id",
            usernames,
        )
        user_ids = [row["id"] for row in rows]
        accounts = {row["username"].lower(): row["id"] for row in rows}
        bar.update(plan.users)
        await insert_posts(conn, plan, user_ids, usernames, accounts, bar)
        await conn.copy_records_to_table(
            "follows",
            records=sorted(_follow_rows(plan, user_ids)),
            columns=["follower_id", "followee_id"],
        )
        bar.update(plan.follows)
        await recount(conn)
    bar.close()
    # Statistics for the planner, and the visibility map, without which the index-only scans
    # of the timelines visit the table after all (autovacuum would get there, later).
    await conn.execute("VACUUM (ANALYZE)")


async def insert_posts(conn, plan, user_ids, usernames, accounts, bar) -> None:
    """COPY into a scratch table, then one INSERT: post ids are chosen here, so that replies
    can point at earlier posts, and posts.id only takes explicit values that way. Tags and
    mentions are found as when a post is written (`accounts`: user ids by lower-cased name)."""
    await conn.execute(
        """
        CREATE TEMP TABLE seed_posts (
            id bigint, author_id bigint, body text, in_reply_to bigint, created_at timestamptz
        ) ON COMMIT DROP
        """
    )
    first_post = await conn.fetchval("SELECT coalesce(max(id), 0) + 1 FROM posts")
    batch: list[tuple] = []
    tags: list[tuple[str, int]] = []
    mentioned: list[tuple[int, int, str]] = []
    for row in _post_rows(plan, user_ids, first_post, usernames):
        batch.append(row)
        tags += [(tag, row[0]) for tag in hashtags(row[2])]
        mentioned += [
            (row[0], accounts[name], name) for name in mentions(row[2]) if name in accounts
        ]
        if len(batch) == BATCH:
            await conn.copy_records_to_table("seed_posts", records=batch)
            bar.update(len(batch))
            batch = []
    if batch:
        await conn.copy_records_to_table("seed_posts", records=batch)
        bar.update(len(batch))
    await conn.execute(
        """
        INSERT INTO posts (id, author_id, body, in_reply_to, created_at) OVERRIDING SYSTEM VALUE
        SELECT id, author_id, body, in_reply_to, created_at FROM seed_posts ORDER BY id
        """
    )
    await conn.copy_records_to_table("post_tags", records=tags, columns=["tag", "post_id"])
    await conn.copy_records_to_table(
        "post_mentions", records=mentioned, columns=["post_id", "user_id", "name"]
    )
    await conn.execute(
        "SELECT setval(pg_get_serial_sequence('posts', 'id'), (SELECT max(id) FROM posts))"
    )


async def recount(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        UPDATE users u SET
            post_count = coalesce((SELECT count(*) FROM posts p WHERE p.author_id = u.id), 0),
            follower_count = coalesce(
                (SELECT count(*) FROM follows f WHERE f.followee_id = u.id), 0),
            following_count = coalesce(
                (SELECT count(*) FROM follows f WHERE f.follower_id = u.id), 0)
        """
    )
    await conn.execute(
        """
        UPDATE posts p SET reply_count = r.replies
        FROM (SELECT in_reply_to AS id, count(*) AS replies FROM posts
              WHERE in_reply_to IS NOT NULL GROUP BY in_reply_to) AS r
        WHERE p.id = r.id AND p.reply_count <> r.replies
        """
    )
