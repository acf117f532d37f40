"""SQL for search. Both statements read what the viewer ($1) may see (microblog/blocks/).

Posts: the newest CANDIDATES matches, from the GIN index of their words (migration 0016) or of
post_tags or the author's index, ranked by how well they match and how recent they are; pages
are bounded by CANDIDATES rather than walking every match of a common word.

People: names that start a word with the query or share enough trigrams with it (a typo),
the best few, from the GIN index of users.name_trigrams. No pages: a name search that does not
find someone in the first PEOPLE_LIMIT needs more letters.
"""

from __future__ import annotations

from functools import cache

import asyncpg

from microblog.follows.queries import person_columns
from microblog.posts.queries import SHOWN, VIEW_COLUMNS, PostView, post_views
from microblog.search.parse import Query
from microblog.users.queries import User

CANDIDATES = 400
PEOPLE_LIMIT = 10
# The share of trigrams a name must have in common with the query to count as a typo of it.
SIMILAR = 0.3
# How much a match loses with age: half its rank each week.
HALF_LIFE_DAYS = 7.0
WORDS = "websearch_to_tsquery('english', $2)"


@cache
def posts_sql(words: bool, author: bool, tags: bool) -> str:
    """The statement for a query with these parts. $1 the viewer, then in order those parts
    that are present (the words, the author's lower-cased name, the tags), then offset and
    limit. Each part is an indexed condition; the planner starts from the most selective."""
    conditions, number = [SHOWN], 2
    if words:
        conditions.append(f"p.search_vector @@ {WORDS}")
        number += 1
    if author:
        conditions.append(f"p.author_id = (SELECT id FROM users WHERE lower(username) = ${number})")
        number += 1
    if tags:
        conditions.append(
            f"p.id IN (SELECT post_id FROM post_tags WHERE tag = (${number}::text[])[1])"
            f" AND ${number}::text[] <@ ARRAY(SELECT tag FROM post_tags t WHERE t.post_id = p.id)"
        )
        number += 1
    rank = (
        f"ts_rank(p.search_vector, {WORDS}) * power(0.5, extract(epoch FROM now() - p.created_at)"
        f" / 86400 / {HALF_LIFE_DAYS}) DESC,"
        if words
        else ""
    )
    return f"""
        SELECT {VIEW_COLUMNS}, p.id, NULL, NULL
        FROM (
            SELECT p.id FROM posts p WHERE {" AND ".join(conditions)}
            ORDER BY p.id DESC LIMIT {CANDIDATES}
        ) AS found
        JOIN posts p ON p.id = found.id JOIN users u ON u.id = p.author_id
        ORDER BY {rank} p.id DESC
        OFFSET ${number} LIMIT ${number + 1}
    """


async def posts(
    conn: asyncpg.Connection, query: Query, viewer_id: int | None, offset: int, limit: int
) -> list[PostView]:
    words = bool(query.words.strip())
    args: list[object] = [viewer_id]
    if words:
        args.append(query.words)
    if query.author:
        args.append(query.author)
    if query.tags:
        args.append(list(query.tags))
    sql = posts_sql(words, query.author is not None, bool(query.tags))
    return post_views(await conn.fetch(sql, *args, offset, limit))


PEOPLE = f"""
    SELECT {person_columns} FROM users u
    WHERE (
        (cardinality(name_prefix_trigrams($2)) > 0 AND u.name_trigrams @> name_prefix_trigrams($2))
        OR (u.name_trigrams && name_inner_trigrams($2)
            AND trigram_similarity(u.name_trigrams, name_trigrams($2)) >= {SIMILAR})
    ) AND u.id NOT IN (SELECT * FROM blocked_with($1))
    ORDER BY lower(u.username) = $2 DESC, starts_with(lower(u.username), $2) DESC,
        trigram_similarity(u.name_trigrams, name_trigrams($2)) DESC, u.follower_count DESC, u.id
    LIMIT $3
"""


async def people(conn: asyncpg.Connection, name: str, viewer_id: int | None) -> list[User]:
    """Up to PEOPLE_LIMIT accounts for a lower-cased name: the username itself first, then
    usernames that start with it, then the closest names."""
    rows = await conn.fetch(PEOPLE, viewer_id, name, PEOPLE_LIMIT)
    return [User(**dict(row)) for row in rows]
