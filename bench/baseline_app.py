"""The scale benchmark's baseline: the least a Quart + asyncpg + jinja2 page can do.

One route renders the 20 newest posts with their authors from the same database the app
uses, through the same stack (hypercorn, one process, one event loop) and nothing else: no
sessions, no CSRF, no rate limits, no logging, no htmx, no cache.

    python bench/baseline_app.py --port 3100   (DATABASE_URL names the seeded database)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import asyncpg
import jinja2
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

PAGE = jinja2.Template(
    """<!doctype html><html><head><title>baseline</title></head><body><main>
{% for post in posts %}<article id="post-{{ post.id }}"><h2>{{ post.username }}</h2>
<p>{{ post.body }}</p><time>{{ post.created_at.isoformat() }}</time></article>
{% endfor %}</main></body></html>""",
    autoescape=True,
)


def create_app(database_url: str, pool_size: int) -> Quart:
    app = Quart(__name__)

    @app.before_serving
    async def open_pool() -> None:
        app.pool = await asyncpg.create_pool(database_url, min_size=1, max_size=pool_size)

    @app.after_serving
    async def close_pool() -> None:
        await app.pool.close()

    @app.route("/")
    async def newest() -> str:
        async with app.pool.acquire() as conn:
            posts = await conn.fetch(
                """
                SELECT p.id, u.username, p.body, p.created_at
                FROM posts p JOIN users u ON u.id = p.author_id
                ORDER BY p.id DESC LIMIT 20
                """
            )
        return PAGE.render(posts=posts)

    return app


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(os.environ["DATABASE_URL"], int(os.environ.get("DB_POOL_SIZE", "10")))
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    config.keep_alive_timeout = 75
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await serve(app, config, shutdown_trigger=stop.wait)


if __name__ == "__main__":
    asyncio.run(main())
