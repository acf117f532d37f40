"""create_app: one Quart app from settings and already-open pools. No module-level app."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from quart import Quart

from microblog.avatars.routes import blueprint as avatars_blueprint
from microblog.cache.store import Cache
from microblog.config import Settings
from microblog.db.pools import Pools
from microblog.duties import transactions_with_duties
from microblog.follows.routes import blueprint as follows_blueprint
from microblog.notifications.routes import blueprint as notifications_blueprint
from microblog.posts.cards import init_cards
from microblog.posts.routes import blueprint as posts_blueprint
from microblog.timelines.routes import blueprint as timelines_blueprint
from microblog.users.routes import blueprint as users_blueprint
from microblog.web import assets, csrf, health, observability, security, sessions
from microblog.web.converters import IdConverter, UsernameConverter
from microblog.web.errors import register_error_handlers
from microblog.web.forms import read_body_first
from microblog.web.proxies import ProxyHeadersMiddleware
from microblog.web.ratelimits import init_rate_limits
from microblog.web.templating import init_templating

# Larger bodies get 413 before any handler reads them. Forms here are small text.
MAX_REQUEST_BYTES = 1024 * 1024
SESSION_LIFETIME = timedelta(days=30)


def create_app(
    settings: Settings,
    pools: Pools,
    *,
    instance_name: str,
    draining: asyncio.Event | None = None,
) -> Quart:
    app = Quart(__name__, template_folder=str(assets.TEMPLATES_DIR), static_folder=None)
    secret_key, fallbacks = sessions.signing_keys(settings)
    app.config.update(
        SECRET_KEY=secret_key,
        SECRET_KEY_FALLBACKS=fallbacks,
        SESSION_COOKIE_NAME="microblog_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # A session lasts 30 days from log-in; re-signing the cookie on every response would
        # cost every request a signature and a Set-Cookie header.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
        PREFER_SECURE_URLS=settings.is_production,
    )
    cache = Cache(pools.cache)
    transactions = transactions_with_duties(settings, pools, cache)
    app.extensions.update(
        settings=settings,
        pools=pools,
        transactions=transactions,
        instance_name=instance_name,
        draining=draining or asyncio.Event(),
        static_files=assets.StaticFiles(assets.STATIC_DIR),
        cache=cache,
    )
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["username"] = UsernameConverter
    app.url_map.strict_slashes = False

    app.before_request(observability.start_request)
    sessions.init_sessions(app, pools.primary_url, transactions)
    app.before_request(read_body_first)
    init_rate_limits(
        app, {rule.name: rule for rule in settings.rate_limits}
    )  # after the user is known: post_user needs it
    app.before_request(csrf.protect)
    app.after_request(security.add_security_headers)
    app.after_request(observability.finish_request)

    for blueprint in (
        health.blueprint,
        assets.blueprint,
        timelines_blueprint,
        users_blueprint,
        posts_blueprint,
        follows_blueprint,
        notifications_blueprint,
        avatars_blueprint,
    ):
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    init_templating(app)
    init_cards(app)
    app.asgi_app = ProxyHeadersMiddleware(app.asgi_app, settings.trusted_proxies)
    return app
