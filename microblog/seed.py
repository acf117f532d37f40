"""`microblog seed`: a demo that looks alive, or a benchmark's data set, loaded with COPY.

Real microblogs are uneven, and timelines behave differently when they are: a few accounts
post most of the posts, have most of the followers and get most of the likes. Authors are
therefore drawn from a Zipf-like distribution, followees by popularity and liked posts by their
author's, and some posts are replies, mention someone, or carry a hashtag. Reposts (one for
every ten posts, by reposters as uneven as authors, of recent posts) take their places among
the posts, as their ids are drawn from the posts' sequence; a few accounts block or mute
others. Accounts have display names and bios; about one post in a hundred shows pictures
(seed_pictures.py). Every demo account's password is DEMO_PASSWORD.

Everything is written in one transaction of the process's Transactions, each step after the
one before (users, posts with their likes, follows) from what the earlier ones made (Demo).
The counts kept on rows are computed in SQL from the rows, in that transaction, and the seed
says what it changed as every write does (db/transactions.py), so the anonymous public page's
cache, among others, hears of it on commit.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate

import asyncpg
from tqdm import tqdm

from microblog.db.pools import Pools
from microblog.db.transactions import Transactions, changed
from microblog.posts.queries import LIKES, POSTS
from microblog.posts.render import hashtags, mentions
from microblog.seed_pictures import insert_pictures
from microblog.seed_words import BIOS, FIRST_NAMES, LAST_NAMES, TAGS, THINGS, WORDS
from microblog.users.passwords import hash_password
from microblog.users.queries import PROFILES

DEMO_PASSWORD = "demo password"
BATCH = 10_000
REPOSTS_PER = 10  # posts: every eleventh entry is a repost


@dataclass(frozen=True)
class SeedPlan:
    users: int
    posts: int
    follows: int
    likes: int
    days: int = 30
    seed: int = 42
    reposts: int = field(init=False)
    blocks: int = field(init=False)
    mutes: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reposts", self.posts // REPOSTS_PER)
        object.__setattr__(self, "blocks", self.users // 100)
        object.__setattr__(self, "mutes", self.users // 50)


def _entry_id(first_id: int, post: int) -> int:
    """The id of the post-th post: after every REPOSTS_PER posts comes a repost's id."""
    return first_id + post + post // REPOSTS_PER


@dataclass
class Demo:
    """What the seed has made so far, for the steps after it and for the person who ran it."""

    user_ids: list[int]
    usernames: list[str]  # in order of popularity: the first post and are followed the most
    first_post: int = 0
    authors: list[int] = field(default_factory=list)  # of each post, in order
    follows: int = 0
    liked: set[int] = field(default_factory=set)  # posts with a like
    likes: int = 0
    reposts: int = 0
    blocks: int = 0
    mutes: int = 0
    pictured: int = 0  # posts with pictures

    @property
    def post_ids(self) -> list[int]:
        return [_entry_id(self.first_post, n) for n in range(len(self.authors))]


def _weights(count: int, exponent: float = 1.1) -> list[float]:
    """Cumulative Zipf-like weights: rank 1 is far more likely than rank 1000."""
    return list(accumulate(1.0 / (rank**exponent) for rank in range(1, count + 1)))


async def seed(
    transactions: Transactions, pools: Pools, plan: SeedPlan, *, progress: bool = True
) -> Demo:
    """The plan's users, posts, likes, reposts, follows, blocks and mutes, in one
    transaction."""
    password_hash = await hash_password(DEMO_PASSWORD)
    total = plan.users + plan.posts + plan.likes + plan.reposts + plan.follows
    total += plan.blocks + plan.mutes
    with tqdm(total=total, unit="rows", disable=not progress) as bar:
        async with transactions() as conn:
            demo = await _insert_users(conn, plan, password_hash, bar)
            await insert_posts(conn, plan, demo, bar)
            demo.pictured = await insert_pictures(conn, demo.post_ids, plan.seed)
            follows = await _insert_follows(conn, plan, demo, bar)
            await _insert_blocks_and_mutes(conn, plan, demo, follows, bar)
            await recount_users(conn, demo.user_ids)
            _say_what_changed(conn, demo)
    # Statistics for the planner, and the visibility map, without which the index-only scans
    # of the timelines visit the table after all (autovacuum would get there, later).
    async with pools.primary.acquire() as conn:
        await conn.execute("VACUUM (ANALYZE)")
    return demo


def _people(plan: SeedPlan, first_number: int) -> Iterator[tuple[str, str, str]]:
    """(username, display name, bio) of each account: names that read as names, numbered so
    that seeding again never takes one twice."""
    rng = random.Random(plan.seed + 2)
    for n in range(plan.users):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        a, b, c = rng.sample(THINGS, 3)
        bio = rng.choice(BIOS).format(A=a.capitalize(), a=a, b=b, c=c, tag=rng.choice(TAGS))
        yield f"{first.lower()}{first_number + n}", f"{first} {last}", bio


async def _insert_users(conn: asyncpg.Connection, plan: SeedPlan, password_hash: str, bar) -> Demo:
    first_number = await conn.fetchval("SELECT coalesce(max(id), 0) + 1 FROM users")
    people = list(_people(plan, first_number))
    await conn.copy_records_to_table(
        "users",
        records=[(name, password_hash, shown, bio) for name, shown, bio in people],
        columns=["username", "password_hash", "display_name", "bio"],
    )
    rows = await conn.fetch(
        "SELECT id, username FROM users WHERE username = ANY($1::text[]) ORDER BY id",
        [name for name, _, _ in people],
    )
    bar.update(plan.users)
    return Demo(user_ids=[row["id"] for row in rows], usernames=[row["username"] for row in rows])


def _body(rng: random.Random, usernames: list[str], user_weights: list[float]) -> str:
    words = rng.choices(WORDS, k=rng.randint(4, 30))
    if rng.random() < 0.15:
        words.insert(
            rng.randrange(len(words) + 1), "@" + rng.choices(usernames, cum_weights=user_weights)[0]
        )
    if rng.random() < 0.2:
        words.append("#" + rng.choice(TAGS))
    return " ".join(words).capitalize()


def _post_rows(plan: SeedPlan, demo: Demo) -> Iterator[tuple]:
    rng = random.Random(plan.seed)
    weights = _weights(plan.users)
    start = datetime.now(UTC) - timedelta(days=plan.days)
    step = timedelta(days=plan.days) / max(plan.posts, 1)
    for n in range(plan.posts):
        author = rng.choices(demo.user_ids, cum_weights=weights)[0]
        post_id = _entry_id(demo.first_post, n)
        # One post in ten replies to one of the 2,000 posts before it.
        reply_to = _entry_id(demo.first_post, rng.randint(max(0, n - 2000), n - 1)) if (
            n > 0 and rng.random() < 0.1) else None  # fmt: skip
        body = _body(rng, demo.usernames, weights)
        yield (post_id, author, body, reply_to, start + step * n)


def _repost_rows(plan: SeedPlan, demo: Demo) -> Iterator[tuple]:
    """(id, reposter, post, post's author, time): each in the place after its REPOSTS_PER
    posts, of one of the 20,000 posts before it; nobody reposts a post twice."""
    rng = random.Random(plan.seed + 4)
    weights = _weights(plan.users)
    start = datetime.now(UTC) - timedelta(days=plan.days)
    step = timedelta(days=plan.days) / max(plan.posts, 1)
    made: set[tuple[int, int]] = set()
    for k in range(plan.reposts):
        last = (k + 1) * REPOSTS_PER - 1  # the post it follows
        post = rng.randint(max(0, last - 20_000), last)
        user = rng.choices(demo.user_ids, cum_weights=weights)[0]
        if (user, post) not in made:
            made.add((user, post))
            yield (_entry_id(demo.first_post, last) + 1, user, _entry_id(demo.first_post, post),
                   demo.authors[post], start + step * last)  # fmt: skip


def _like_rows(plan: SeedPlan, demo: Demo) -> set[tuple[int, int]]:
    """(user, post) pairs: popular authors' posts get most likes, nobody likes their own."""
    rng = random.Random(plan.seed + 3)
    rank = {user_id: position for position, user_id in enumerate(demo.user_ids, start=1)}
    by_author = list(accumulate(1.0 / rank[author] ** 1.1 for author in demo.authors))
    post_ids = demo.post_ids
    pairs: set[tuple[int, int]] = set()
    limit = min(plan.likes, len(post_ids) * (plan.users - 1))
    while len(pairs) < limit:
        for index in rng.choices(range(len(post_ids)), cum_weights=by_author, k=limit - len(pairs)):
            liker = rng.choice(demo.user_ids)
            if liker != demo.authors[index]:
                pairs.add((liker, post_ids[index]))
    return pairs


async def insert_posts(conn: asyncpg.Connection, plan: SeedPlan, demo: Demo, bar) -> None:
    """COPY into scratch tables, then one INSERT each: post ids are chosen here, so that replies
    can point at earlier posts (posts.id only takes explicit values that way), and the counts
    on each post come from the scratch rows in the same statement that writes it, rather than
    from an UPDATE of every post after. Tags and mentions are found as when a post is written."""
    await conn.execute(
        """
        CREATE TEMP TABLE seed_posts (
            id bigint, author_id bigint, body text, in_reply_to bigint, created_at timestamptz
        ) ON COMMIT DROP;
        CREATE TEMP TABLE seed_likes (user_id bigint, post_id bigint) ON COMMIT DROP;
        CREATE TEMP TABLE seed_reposts (
            id bigint, user_id bigint, post_id bigint, post_author_id bigint,
            created_at timestamptz
        ) ON COMMIT DROP;
        """
    )
    # Posts and reposts share the sequence (migration 0011): new ones come after both.
    demo.first_post = await conn.fetchval(
        "SELECT coalesce(greatest((SELECT max(id) FROM posts), (SELECT max(id) FROM reposts)), 0)"
        " + 1"
    )
    accounts = {
        name.lower(): user_id for name, user_id in zip(demo.usernames, demo.user_ids, strict=True)
    }
    batch: list[tuple] = []
    tags: list[tuple[str, int]] = []
    mentioned: list[tuple[int, int, str]] = []
    for row in _post_rows(plan, demo):
        batch.append(row)
        demo.authors.append(row[1])
        tags += [(tag, row[0]) for tag in hashtags(row[2])]
        mentioned += [
            (row[0], accounts[name], name) for name in mentions(row[2]) if name in accounts
        ]
        if len(batch) == BATCH:
            await conn.copy_records_to_table("seed_posts", records=batch)
            bar.update(len(batch))
            batch = []
    await conn.copy_records_to_table("seed_posts", records=batch)
    bar.update(len(batch))
    likes = _like_rows(plan, demo)
    await conn.copy_records_to_table("seed_likes", records=likes)
    demo.likes, demo.liked = len(likes), {post_id for _, post_id in likes}
    reposts = list(_repost_rows(plan, demo))
    await conn.copy_records_to_table("seed_reposts", records=reposts)
    demo.reposts = len(reposts)
    await conn.execute(
        """
        INSERT INTO posts (
            id, author_id, body, in_reply_to, created_at, reply_count, like_count, repost_count
        )
        OVERRIDING SYSTEM VALUE
        SELECT p.id, p.author_id, p.body, p.in_reply_to, p.created_at,
            coalesce(r.replies, 0), coalesce(l.likes, 0), coalesce(s.reposts, 0)
        FROM seed_posts p
        LEFT JOIN (SELECT in_reply_to AS id, count(*) AS replies FROM seed_posts
                   WHERE in_reply_to IS NOT NULL GROUP BY in_reply_to) AS r ON r.id = p.id
        LEFT JOIN (SELECT post_id AS id, count(*) AS likes FROM seed_likes GROUP BY post_id)
                   AS l ON l.id = p.id
        LEFT JOIN (SELECT post_id AS id, count(*) AS reposts FROM seed_reposts GROUP BY post_id)
                   AS s ON s.id = p.id
        ORDER BY p.id;
        INSERT INTO likes (user_id, post_id)
        SELECT user_id, post_id FROM seed_likes ORDER BY user_id, post_id;
        INSERT INTO reposts (id, user_id, post_id, post_author_id, created_at)
        SELECT * FROM seed_reposts ORDER BY id;
        SELECT setval(pg_get_serial_sequence('posts', 'id'),
                      greatest((SELECT max(id) FROM posts), (SELECT max(id) FROM reposts)));
        """
    )
    bar.update(len(likes) + len(reposts))
    await conn.copy_records_to_table("post_tags", records=tags, columns=["tag", "post_id"])
    await conn.copy_records_to_table(
        "post_mentions", records=mentioned, columns=["post_id", "user_id", "name"]
    )


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


async def _insert_follows(
    conn: asyncpg.Connection, plan: SeedPlan, demo: Demo, bar
) -> set[tuple[int, int]]:
    follows = _follow_rows(plan, demo.user_ids)
    await conn.copy_records_to_table(
        "follows", records=sorted(follows), columns=["follower_id", "followee_id"]
    )
    demo.follows = len(follows)
    bar.update(len(follows))
    return follows


def _block_and_mute_rows(
    plan: SeedPlan, user_ids: list[int], follows: set[tuple[int, int]]
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Blocks between accounts that follow each other in neither direction (a block ends
    follows), and mutes of accounts their muter follows (where a mute is of use)."""
    rng = random.Random(plan.seed + 5)
    blocks: set[tuple[int, int]] = set()
    # Bounded, as _follow_rows is: where nearly everyone follows everyone, fewer blocks.
    for _ in range(plan.blocks * 20 if len(user_ids) > 1 else 0):
        if len(blocks) == plan.blocks:
            break
        pair = tuple(rng.sample(user_ids, 2))
        if pair not in follows and pair[::-1] not in follows:
            blocks.add(pair)
    return blocks, set(rng.sample(sorted(follows), min(plan.mutes, len(follows))))


async def _insert_blocks_and_mutes(
    conn: asyncpg.Connection, plan: SeedPlan, demo: Demo, follows: set[tuple[int, int]], bar
) -> None:
    blocks, mutes = _block_and_mute_rows(plan, demo.user_ids, follows)
    await conn.copy_records_to_table(
        "blocks", records=sorted(blocks), columns=["blocker_id", "blocked_id"]
    )
    await conn.copy_records_to_table(
        "mutes", records=sorted(mutes), columns=["muter_id", "muted_id"]
    )
    demo.blocks, demo.mutes = len(blocks), len(mutes)
    bar.update(plan.blocks + plan.mutes)


async def recount_users(conn: asyncpg.Connection, user_ids: list[int]) -> None:
    """The counts on these accounts' rows: those who posted or followed or were followed."""
    await conn.execute(
        """
        UPDATE users u SET
            post_count = (SELECT count(*) FROM posts p WHERE p.author_id = u.id),
            follower_count = (SELECT count(*) FROM follows f WHERE f.followee_id = u.id),
            following_count = (SELECT count(*) FROM follows f WHERE f.follower_id = u.id)
        WHERE u.id = ANY($1::bigint[])
        """,
        user_ids,
    )


def _say_what_changed(conn: asyncpg.Connection, demo: Demo) -> None:
    for user_id in demo.user_ids:
        changed(conn, PROFILES, user_id)
    for post_id in demo.post_ids:
        changed(conn, POSTS, post_id)
    for post_id in demo.liked:
        changed(conn, LIKES, post_id)
