"""Shared fixtures: a real PostgreSQL, a migrated template database, a fresh copy per test.

The server is TEST_DATABASE_URL when set, otherwise an embedded one (pgserver) in a temporary
folder for the whole session. Each test that asks for `database_url` gets its own database,
created from the template in a few milliseconds and dropped afterwards. Beside it, on demand
and once per session: a streaming replica of that server (`replica`) and PgBouncer in
transaction mode in front of it (`pgbouncer`), from tests/servers.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pgserver
import pytest
from quart import Quart
from quart.testing import QuartClient

from microblog.app import create_app
from microblog.cache.store import Cache
from microblog.config import Settings
from microblog.db.embedded import start_embedded_server
from microblog.db.migrate import ALL, MigrationSet, apply_migrations
from microblog.db.pools import Pools, open_pools
from microblog.db.standby import StandbyError
from microblog.db.transactions import Transactions, without_duties
from microblog.duties import transactions_with_duties
from microblog.live.hub import Hub
from microblog.posts.queries import create_post
from microblog.posts.render import hashtags, mentions
from microblog.ratelimit.rules import parse_rules
from microblog.reposts.queries import repost
from microblog.runtime import listening
from microblog.users import sessions
from microblog.users.known import KnownUsers
from microblog.users.passwords import hash_password
from microblog.users.queries import User, create_user, start_session
from microblog.web.sessions import SESSION_LIFETIME
from microblog.web.state import KEY, AppState
from tests.servers import PgBouncer, ReplicaServer

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-base-" + "x" * 40
DEFAULT_PASSWORD = "correct horse battery"
HTMX = {"HX-Request": "true"}  # the header htmx sends with every request it makes
# Nothing listens on port 1: connecting fails as it does to a database server that is down.
UNREACHABLE = "postgresql://microblog@127.0.0.1:1/microblog"
GENEROUS_LIMITS = (
    "login_ip=1000/1m,login_user_ip=1000/1m,login_user=1000/1m,signup_ip=1000/1m,"
    "post_user=1000/1m,global_ip=10000/1m"
)


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    head, sep, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{name}{sep}{query}"


def seeded_database(
    server_url: str,
    template: str,
    name: str,
    seed: Callable[[asyncpg.Connection], Awaitable[None]],
) -> Iterator[str]:
    """A database of the migrated template filled by `seed`, for a module's EXPLAIN tests
    (seeding takes seconds, so once a module); its URL, then dropped."""

    async def run(sql: str, database: str = "postgres") -> None:
        conn = await asyncpg.connect(with_database(server_url, database))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create() -> None:
        await run(f'DROP DATABASE IF EXISTS "{name}"')
        await run(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            await seed(conn)
        finally:
            await conn.close()

    asyncio.run(create())
    yield with_database(server_url, name)
    asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))


# A folder shared by every worker of one run (pytest-xdist starts them after this hook, and
# they inherit the environment), for what is made once per run, such as the built .pyz.
SHARED_FOLDER = "PYTEST_MICROBLOG_SHARED_FOLDER"


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the run itself, not one of its workers
        os.environ[SHARED_FOLDER] = tempfile.mkdtemp(prefix="microblog-tests-shared-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ.pop(SHARED_FOLDER), ignore_errors=True)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session (any database on it).

    The embedded one lives outside pytest's numbered temporary folders, which a concurrent
    pytest run may prune, and is stopped and deleted with the session.
    """
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    folder = Path(tempfile.mkdtemp(prefix="microblog-tests-"))
    try:
        yield with_database(start_embedded_server(folder).url, "postgres")
    finally:
        pgserver.get_server(folder / "pgdata").cleanup()
        shutil.rmtree(folder, ignore_errors=True)


async def _build_template(server_url: str, name: str, sets: tuple[MigrationSet, ...]) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_database(server_url, name))
    try:
        await apply_migrations(conn, sets)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def replica_server(server_url: str) -> Iterator[ReplicaServer]:
    """A streaming replica of the session's server, made when a test first asks for one."""
    try:
        server = ReplicaServer(server_url)
        server.start()
    except StandbyError as error:
        if os.environ.get("TEST_DATABASE_URL"):
            pytest.skip(f"cannot make a replica of TEST_DATABASE_URL's server: {error}")
        raise
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def replica(replica_server: ReplicaServer, database_url: str) -> AsyncIterator[ReplicaServer]:
    """The replica, once it has the test's database; running and replaying after the test,
    whatever the test did to it. `replica.url(database_url)` is that database on it."""
    await replica_server.wait_replayed()
    yield replica_server
    if not replica_server.standby.running:
        replica_server.start()
    await replica_server.resume_replay()


@pytest.fixture(scope="session")
def pgbouncer(server_url: str) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode before the session's server; `pgbouncer.url(url)` is the
    same database through it."""
    if shutil.which("pgbouncer") is None:
        pytest.fail("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    bouncer = PgBouncer(server_url)
    try:
        yield bouncer
    finally:
        bouncer.close()


@pytest.fixture(scope="session")
def template_database(server_url: str) -> str:
    """Every migration set in one database, as a default deployment has them."""
    name = f"microblog_template_{os.getpid()}"
    asyncio.run(_build_template(server_url, name, ALL))
    return name


@pytest.fixture(scope="session")
def role_templates(server_url: str) -> dict[str, str]:
    """One template per database role, each with only its own tables: a query sent to the
    wrong pool fails instead of finding a twin table."""
    names = {role.name: f"microblog_template_{role.name}_{os.getpid()}" for role in ALL}

    async def build() -> None:
        for role in ALL:
            await _build_template(server_url, names[role.name], (role,))

    asyncio.run(build())
    return names


# Tests of modules marked both_layouts run twice: with every role in one database (the
# default deployment), and with QUEUE_DATABASE_URL and CACHE_DATABASE_URL on databases of
# their own. Those marked through_pgbouncer run once more, with DATABASE_URL through PgBouncer
# in transaction mode and DATABASE_DIRECT_URL beside it. The rest touch one database's tables
# only, and run once, in the first layout.
ONE_DATABASE = "one-database"
SPLIT_DATABASES = "split-databases"
THROUGH_PGBOUNCER = "through-pgbouncer"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "layout" not in metafunc.fixturenames:
        return
    layouts = [ONE_DATABASE]
    if metafunc.definition.get_closest_marker("both_layouts"):
        layouts.append(SPLIT_DATABASES)
    if metafunc.definition.get_closest_marker("through_pgbouncer"):
        layouts.append(THROUGH_PGBOUNCER)
    if len(layouts) > 1:
        metafunc.parametrize("layout", layouts, indirect=True)


@pytest.fixture
def layout(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", ONE_DATABASE)


@dataclass(frozen=True)
class Databases:
    """The test's own databases, by role; roles in one database share its URL."""

    primary: str
    queue: str
    cache: str


@pytest.fixture
async def databases(
    server_url: str, layout: str, template_database: str, role_templates: dict[str, str]
) -> AsyncIterator[Databases]:
    """Fresh, migrated databases for this test only, laid out as `layout` says."""
    if layout != SPLIT_DATABASES:
        templates = dict.fromkeys(role_templates, template_database)
    else:
        templates = role_templates
    admin = await asyncpg.connect(server_url)
    created: dict[str, str] = {}
    try:
        for template in templates.values():
            if template not in created:
                created[template] = name = f"test_{uuid.uuid4().hex[:16]}"
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        url = {
            role: with_database(server_url, created[template])
            for role, template in templates.items()
        }
        yield Databases(primary=url["app"], queue=url["queue"], cache=url["cache"])
        for name in created.values():
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def fresh_database(server_url: str) -> Iterator[str]:
    """An empty, unmigrated database on the session's test server."""
    name = f"fresh_{uuid.uuid4().hex[:16]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(server_url, name)
    finally:
        asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def database_url(databases: Databases) -> str:
    """The test's own primary database."""
    return databases.primary


@pytest.fixture
def settings(
    databases: Databases, layout: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Settings:
    pooled = layout == THROUGH_PGBOUNCER
    return Settings(
        database_url=(
            request.getfixturevalue("pgbouncer").url(databases.primary)
            if pooled
            else databases.primary
        ),
        database_direct_url=databases.primary if pooled else None,
        queue_database_url=databases.queue if databases.queue != databases.primary else None,
        cache_database_url=databases.cache if databases.cache != databases.primary else None,
        secret_key_base=TEST_SECRET,
        data_dir=tmp_path / "var",
        db_pool_size=4,
        # The limiter runs on every request, with room for what one test does from one address.
        rate_limits=tuple(parse_rules(GENEROUS_LIMITS).values()),
    )


@pytest.fixture
async def pools(settings: Settings) -> AsyncIterator[Pools]:
    async with open_pools(settings, application_name="microblog tests") as opened:
        yield opened


@pytest.fixture
def transactions(settings: Settings, pools: Pools) -> Transactions:
    """Transactions as a worker opens them, for calling jobs directly."""
    return transactions_with_duties(settings, pools, Cache(pools.cache))


@pytest.fixture
async def db(pools: Pools) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test's database, for arranging and checking data."""
    async with pools.primary.acquire() as conn:
        yield conn


@pytest.fixture
async def queue_db(pools: Pools) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test's queue database (the primary one unless split)."""
    async with pools.queue.acquire() as conn:
        yield conn


@pytest.fixture
async def cache_db(pools: Pools) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test's cache database (the primary one unless split)."""
    async with pools.cache.acquire() as conn:
        yield conn


@pytest.fixture
def known_users() -> KnownUsers:
    """The users' rows the test app keeps, while its listener runs."""
    return KnownUsers()


@pytest.fixture
def live(pools: Pools) -> Hub:
    """The test app's live streams, kept up with the events table while its listener runs."""
    return Hub(pools.primary)


@pytest.fixture
async def app(
    settings: Settings, pools: Pools, known_users: KnownUsers, live: Hub
) -> AsyncIterator[Quart]:
    application = create_app(
        settings, pools, instance_name="test-instance", known_users=known_users, live=live
    )
    async with application.test_app(), listening(pools, known_users=known_users, live=live):
        yield application


def app_state(app: Quart) -> AppState:
    return app.extensions[KEY]


@pytest.fixture
def client(app: Quart) -> QuartClient:
    return app.test_client()


# Hashing with argon2 takes tens of milliseconds: factories share one hash.
_password_hash: str | None = None


async def _default_hash() -> str:
    global _password_hash
    if _password_hash is None:
        _password_hash = await hash_password(DEFAULT_PASSWORD)
    return _password_hash


async def make_user(conn: asyncpg.Connection, username: str | None = None) -> User:
    user = await create_user(
        conn, username or f"user_{secrets.token_hex(4)}", await _default_hash()
    )
    assert user is not None
    return user


async def make_post(
    conn: asyncpg.Connection, author: User, body: str = "hello", in_reply_to: int | None = None
) -> int:
    async with without_duties(conn):
        post_id = await create_post(
            conn, author.id, body, hashtags(body), mentions(body), in_reply_to
        )
    assert post_id is not None
    return post_id


async def make_repost(conn: asyncpg.Connection, user: User, post_id: int) -> int:
    """The new repost's id (its timeline entry's)."""
    async with without_duties(conn):
        assert await repost(conn, user.id, post_id)
    return await conn.fetchval(
        "SELECT id FROM reposts WHERE user_id = $1 AND post_id = $2", user.id, post_id
    )


def post_ids(html: str) -> list[int]:
    """Ids of the posts on a page, in page order."""
    return [int(found) for found in re.findall(r'<article class="post[^"]*" id="post-(\d+)"', html)]


def entries(html: str) -> list[tuple[int, str | None]]:
    """(post id, the name of who reposted it, or None) of each card on a page, in page order."""
    found = re.findall(
        r'<article class="post[^"]*" id="post-(\d+)"[^>]*>\s*'
        r'(?:<p class="reposted-by">.*?<bdi>([^<]*)</bdi>)?',
        html,
        flags=re.DOTALL,
    )
    return [(int(post_id), name or None) for post_id, name in found]


@dataclass
class Browser:
    """A test client that sends the session's CSRF token with every POST, as pages do."""

    client: QuartClient

    async def csrf_token(self) -> str:
        response = await self.client.get("/login")
        match = re.search(
            r'name="csrf_token" value="([^"]+)"', await response.get_data(as_text=True)
        )
        assert match, "no CSRF token on /login"
        return match.group(1)

    async def get(self, path: str, **kwargs):
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, form: dict[str, str] | None = None, **kwargs):
        data = dict(form or {})
        data.setdefault("csrf_token", await self.csrf_token())
        return await self.client.post(path, form=data, **kwargs)

    async def login(self, username: str, password: str = DEFAULT_PASSWORD) -> None:
        response = await self.post("/login", {"username": username, "password": password})
        assert response.status_code == 303, await response.get_data(as_text=True)

    async def sign_in(self, user: User) -> None:
        """Logged in as the log-in form would, without its fifth of a second of argon2.

        The session's row is made unannounced: an instance honours a session it has not heard
        of by reading the account afresh, and a notification arriving a moment later would make
        the app forget an account that a test means it to keep."""
        async with (
            app_state(self.client.app).pools.primary.acquire() as conn,
            unannounced(conn, "user_sessions", "user_sessions_changed"),
        ):
            session_id = await start_session(conn, user.id, SESSION_LIFETIME)
        async with self.client.session_transaction() as session:
            session[sessions.USER_ID] = user.id
            session[sessions.SESSION_ID] = session_id
            session[sessions.EPOCH] = user.session_epoch

    async def text(self, path: str, **kwargs) -> str:
        response = await self.get(path, **kwargs)
        assert response.status_code == 200, response.status_code
        return await response.get_data(as_text=True)


@pytest.fixture
def browser(client: QuartClient) -> Browser:
    return Browser(client)


@pytest.fixture
def make_browser(app: Quart) -> Iterator:
    """More browsers (separate cookie jars) on the same app."""
    return lambda: Browser(app.test_client())


@asynccontextmanager
async def unannounced(conn: asyncpg.Connection, table: str, trigger: str) -> AsyncIterator[None]:
    """A transaction whose changes to `table` its NOTIFY `trigger` does not announce, as if
    the notification were still on its way. The trigger is off for this transaction only:
    ALTER TABLE's lock keeps every other writer of the table waiting until it commits."""
    async with conn.transaction():
        await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        yield
        await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")


async def wait_until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll a condition until it holds; fail the test if it does not within `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)
