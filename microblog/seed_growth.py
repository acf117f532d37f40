"""`microblog seed --grow` and `--readers`: more of an already seeded database.

Growing adds posts by the accounts already there, drawn as `seed` draws them (a few accounts
write most), so a data set of 100,000 posts becomes one of 1,000,000 with the same shape.
Readers are demo accounts named after how many accounts they follow (`reader_5000` follows
5,000): the home timeline of each is how its cost grows with the number followed. Asking for
a reader again tops its follows up to the number; it never unfollows.

Counts kept on rows are computed again at the end, in the same transaction as the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from tqdm import tqdm

from microblog.seed import DEMO_PASSWORD, Demo, SeedPlan, insert_posts, recount_users
from microblog.users.passwords import hash_password

READER_PREFIX = "reader_"
# The most-followed accounts first, as a newcomer finds them: they are also the ones that post
# the most, so even a reader of 10 has a full page. Ties by id: every run on the same accounts
# picks the same ones.
FOLLOW_MORE = """
    INSERT INTO follows (follower_id, followee_id)
    SELECT $1, u.id FROM users u
    WHERE u.id <> $1
      AND NOT EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $1 AND f.followee_id = u.id)
    ORDER BY u.follower_count DESC, u.id
    LIMIT $2
"""


class GrowthError(ValueError):
    """The database cannot grow as asked; the message says why."""


@dataclass(frozen=True)
class Growth:
    posts: int = 0  # more posts by the accounts already there
    readers: tuple[int, ...] = ()  # one reader for each number of accounts to follow
    seed: int = 43


@dataclass(frozen=True)
class Grown:
    """What growing added."""

    posts: int
    reposts: int
    follows: int
    readers: dict[str, int]  # each reader's name and how many accounts it now follows

    def __str__(self) -> str:
        words = [
            f"added {self.posts:,} posts, {self.reposts:,} reposts and {self.follows:,} follows"
        ]
        words += [f"{name} follows {count:,} accounts" for name, count in self.readers.items()]
        return "; ".join(words)


def reader_name(following: int) -> str:
    return f"{READER_PREFIX}{following}"


async def grow(conn: asyncpg.Connection, growth: Growth, *, progress: bool = True) -> Grown:
    """Add the growth's posts and readers in one transaction; what was added."""
    async with conn.transaction():
        rows = await conn.fetch("SELECT id, username FROM users ORDER BY id")
        names = {row["username"].lower() for row in rows}
        # A reader cannot follow itself: it needs that many accounts besides its own.
        others = {n: len(rows) - (reader_name(n) in names) for n in growth.readers}
        too_many = [n for n, there in others.items() if n > there]
        if too_many:
            raise GrowthError(
                f"a reader following {max(too_many):,} accounts needs at least "
                f"{max(too_many):,} other accounts; the database has {len(rows):,} accounts"
            )
        if growth.posts and not rows:
            raise GrowthError("there are no accounts to write the posts: seed some first")
        bar = tqdm(total=growth.posts + sum(growth.readers), unit="rows", disable=not progress)
        demo = Demo(
            user_ids=[row["id"] for row in rows], usernames=[row["username"] for row in rows]
        )
        if growth.posts:
            posts_there = await conn.fetchval("SELECT count(*) FROM posts")
            # Another run of the generator for every growth, or each would repeat the last.
            plan = SeedPlan(len(rows), growth.posts, 0, 0, seed=growth.seed + posts_there)
            await insert_posts(conn, plan, demo, bar)
        readers, follows = await _readers(conn, growth.readers, bar)
        everyone = await conn.fetch("SELECT id FROM users")
        await recount_users(conn, [row["id"] for row in everyone])
    bar.close()
    await conn.execute("VACUUM (ANALYZE)")  # as after `seed`: statistics and visibility map
    return Grown(growth.posts, demo.reposts, follows, readers)


async def _readers(conn: asyncpg.Connection, counts: tuple[int, ...], bar: tqdm) -> tuple:
    """Each reader, made if missing, following its number of accounts; and the follows added."""
    password_hash = await hash_password(DEMO_PASSWORD)
    readers, added = {}, 0
    for count in sorted(set(counts)):
        name = reader_name(count)
        reader_id = await conn.fetchval(
            """
            INSERT INTO users (username, password_hash) VALUES ($1, $2)
            ON CONFLICT (lower(username)) DO UPDATE SET username = users.username
            RETURNING id
            """,
            name,
            password_hash,
        )
        following = await conn.fetchval(
            "SELECT count(*) FROM follows WHERE follower_id = $1", reader_id
        )
        status = await conn.execute(FOLLOW_MORE, reader_id, max(count - following, 0))
        made = int(status.split()[-1])
        added += made
        readers[name] = following + made
        bar.update(count)
    return readers, added
