"""@mentions are resolved when a post is written: to the accounts that had those names then."""

from __future__ import annotations

import uuid

import asyncpg

from microblog.db.migrate import APP
from tests.conftest import make_post, make_user, with_database

MENTIONS_MIGRATION = "app/0008_post_mentions"


async def mentioned_names(db, post_id: int) -> list[str]:
    rows = await db.fetch(
        "SELECT u.username FROM post_mentions m JOIN users u ON u.id = m.user_id "
        "WHERE m.post_id = $1",
        post_id,
    )
    return sorted(row["username"] for row in rows)


async def test_a_post_records_the_accounts_it_mentions_and_links_only_those(browser, db):
    alice = await make_user(db, "alice")
    await make_user(db, "Bob")
    await browser.sign_in(alice)
    response = await browser.post("/posts", {"body": "hi @bob, @BOB and @carol"})
    assert response.status_code == 303
    post_id = await db.fetchval("SELECT id FROM posts")
    assert await mentioned_names(db, post_id) == ["Bob"]
    page = await browser.text(f"/posts/{post_id}")
    assert '<a class="mention" href="/@bob" dir="ltr">@bob</a>' in page
    assert '<a class="mention" href="/@BOB" dir="ltr">@BOB</a>' in page
    assert "@carol" in page
    assert 'href="/@carol"' not in page


async def test_an_account_made_later_under_a_mentioned_name_is_not_linked_from_old_posts(
    browser, db
):
    alice = await make_user(db, "alice")
    post_id = await make_post(db, alice, "waiting for @carol")
    await make_user(db, "carol")  # anyone may take a name an old post happens to mention
    await browser.sign_in(alice)
    assert 'href="/@carol"' not in await browser.text("/")
    assert await mentioned_names(db, post_id) == []
    newer = await make_post(db, alice, "welcome @carol")
    page = await browser.text(f"/posts/{newer}")
    assert '<a class="mention" href="/@carol" dir="ltr">@carol</a>' in page


async def test_the_migration_finds_the_mentions_of_posts_written_before_it(server_url):
    name = f"mentions_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(with_database(server_url, name))
    try:
        for migration in APP.migrations():
            if migration.version >= MENTIONS_MIGRATION:
                break
            await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO users (username, password_hash) VALUES ('bob', 'x'), ('Carol_1', 'x')"
        )
        bodies = {
            "@bob first": ["bob"],
            "cc @carol_1 and @BOB, @bob again": sorted(["Carol_1", "bob"]),
            "(@bob) and @bob.": ["bob"],
            "write to me@bob or @bobby or @bob_": [],
            "@nobody here, #bob": [],
            "no at sign": [],
        }
        author = await conn.fetchval("SELECT id FROM users WHERE username = 'bob'")
        ids = {
            body: await conn.fetchval(
                "INSERT INTO posts (author_id, body) VALUES ($1, $2) RETURNING id", author, body
            )
            for body in bodies
        }
        migration = next(m for m in APP.migrations() if m.version == MENTIONS_MIGRATION)
        await conn.execute(migration.sql)
        found = {body: await mentioned_names(conn, post_id) for body, post_id in ids.items()}
        assert found == bodies
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
