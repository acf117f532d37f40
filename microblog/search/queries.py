"""SQL for search. Both statements read what the viewer ($1) may see (microblog/blocks/).

Posts: the newest CANDIDATES matches, from the GIN index of their words (migration 0016), of
post_tags or the author's, ranked by how well they match and how recent they are; pages
are bounded by CANDIDATES rather than walking every match of a common word.

People: names that start a word with the query or share enough trigrams with it (a typo),
the best few, from the GIN index of users.name_trigrams. No pages: a name search that does not
find someone in the first PEOPLE_LIMIT needs more letters.
"""

from __future__ import annotations

import asyncpg

from microblog.follows.queries import person_columns
from microblog.posts.queries import VIEW_COLUMNS, PostView, post_views
from microblog.search.parse import Query
from microblog.users.queries import User

CANDIDATES = 400
PEOPLE_LIMIT = 10
# The share of the query's trigrams a name must have to count as a typo of it (migration 0016).
SIMILAR = 0.5
# How much a match loses with age: half its rank each week.
HALF_LIFE_DAYS = 7.0


# search_posts (migration 0016) picks the newest CANDIDATES matches; they are ranked here.
POSTS = f"""
    SELECT {VIEW_COLUMNS}, p.id, NULL, NULL
    FROM search_posts($1, $2, $3, $4, {CANDIDATES}) AS found (id)
    JOIN posts p ON p.id = found.id JOIN users u ON u.id = p.author_id
    ORDER BY CASE WHEN $2::text IS NULL THEN 0 ELSE
        ts_rank(p.search_vector, websearch_to_tsquery('english', $2::text))
        * power(0.5, extract(epoch FROM now() - p.created_at) / 86400 / {HALF_LIFE_DAYS})
    END DESC, p.id DESC
    OFFSET $5 LIMIT $6
"""


async def posts(
    conn: asyncpg.Connection, query: Query, viewer_id: int | None, offset: int, limit: int
) -> list[PostView]:
    words = query.words.strip() or None
    tags = list(query.tags) or None
    rows = await conn.fetch(POSTS, viewer_id, words, query.author, tags, offset, limit)
    return post_views(rows)


# The query's trigrams are each an InitPlan, (SELECT ...): worked out once per search, where
# a generic plan would call the function again for every candidate name. The share of them a
# name has is worked out only for names that no word of the query starts (OR stops at its
# first true argument), and is not part of the order: a prefix of a popular first name
# matches thousands of people, and ranking them by their followers costs nothing per row.
# The share is counted by a subquery here rather than by trigram_share (migration 0016, kept
# for the instances of the release before this one during a deploy): a SQL function that
# PostgreSQL cannot inline costs a call's set-up for every candidate, and a typo of a common
# name has thousands; the subquery halves the search.
PEOPLE = f"""
    SELECT {person_columns} FROM users u
    WHERE (
        (u.name_trigrams @> (SELECT name_prefix_trigrams($2))
         AND (SELECT cardinality(name_prefix_trigrams($2))) > 0)
        OR (u.name_trigrams && (SELECT name_inner_trigrams($2))
            AND (SELECT count(*) FROM unnest((SELECT name_trigrams($2))) AS t
                 WHERE t = ANY (u.name_trigrams))
                >= {SIMILAR} * (SELECT cardinality(name_trigrams($2))))
    ) AND u.id NOT IN (SELECT * FROM blocked_with($1))
    ORDER BY lower(u.username) = $2 DESC, starts_with(lower(u.username), $2) DESC,
        u.name_trigrams @> (SELECT name_prefix_trigrams($2)) DESC, u.follower_count DESC, u.id
    LIMIT $3
"""


async def people(conn: asyncpg.Connection, name: str, viewer_id: int | None) -> list[User]:
    """Up to PEOPLE_LIMIT accounts for a lower-cased name: the username itself first, then
    usernames that start with it, then names with a word that does, then near misses; the
    most followed first within each."""
    rows = await conn.fetch(PEOPLE, viewer_id, name, PEOPLE_LIMIT)
    return [User(**dict(row)) for row in rows]
