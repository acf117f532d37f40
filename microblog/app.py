"""create_app: one Quart app from settings and already-open pools. No module-level app.

The one place that knows every part of the site: it registers every blueprint and wires the
parts that would otherwise import each other, such as the logins' cached user rows.
Long-lived listeners are not started here but by the run modes (microblog/runtime.py).
"""

from __future__ import annotations

import asyncio

from quart import Quart

from microblog.account_deletion.routes import blueprint as account_deletion_blueprint
from microblog.admin.routes import blueprint as admin_blueprint
from microblog.avatars.routes import blueprint as avatars_blueprint
from microblog.avatars.routes import pictures as pictures_blueprint
from microblog.background import JOB_KINDS
from microblog.blocks.routes import blueprint as blocks_blueprint
from microblog.cache.store import Cache, CacheStats
from microblog.config import Settings
from microblog.db.pools import Pools
from microblog.duties import transactions_with_duties
from microblog.feeds.routes import blueprint as feeds_blueprint
from microblog.follows.routes import blueprint as follows_blueprint
from microblog.live.hub import Hub
from microblog.live.routes import blueprint as live_blueprint
from microblog.metrics.process import ProcessMetrics
from microblog.notifications.routes import blueprint as notifications_blueprint
from microblog.post_pictures.forms import MAX_POST_BYTES
from microblog.post_pictures.routes import blueprint as post_pictures_blueprint
from microblog.posts.cards import local_cards, markup_version
from microblog.posts.compose import draw_blank_compose
from microblog.posts.routes import blueprint as posts_blueprint
from microblog.reposts.routes import blueprint as reposts_blueprint
from microblog.search.routes import blueprint as search_blueprint
from microblog.timelines.routes import blueprint as timelines_blueprint
from microblog.users.known import KnownUsers
from microblog.users.routes import blueprint as users_blueprint
from microblog.users.sessions import current_user, init_logins
from microblog.web import assets, csrf, health, observability, security, sessions, state
from microblog.web.converters import IdConverter, UsernameConverter
from microblog.web.errors import register_error_handlers
from microblog.web.forms import read_body_first, requests_limited
from microblog.web.proxies import ProxyHeadersMiddleware
from microblog.web.ratelimits import init_rate_limits
from microblog.web.read_your_writes import follow_writes
from microblog.web.scrape import MetricsEndpoint
from microblog.web.templating import init_templating

# Larger bodies get 413 before any handler reads them. Forms here are small text, but for a
# post's, which may carry its pictures.
MAX_REQUEST_BYTES = 1024 * 1024
LARGER_REQUESTS = {"/posts": MAX_POST_BYTES}
BLUEPRINTS = (
    health.blueprint,
    assets.blueprint,
    timelines_blueprint,
    users_blueprint,
    posts_blueprint,
    reposts_blueprint,
    follows_blueprint,
    blocks_blueprint,
    notifications_blueprint,
    avatars_blueprint,
    account_deletion_blueprint,
    pictures_blueprint,
    post_pictures_blueprint,
    live_blueprint,
    admin_blueprint,
    search_blueprint,
    feeds_blueprint,
)


def create_app(
    settings: Settings,
    pools: Pools,
    *,
    instance_name: str,
    draining: asyncio.Event | None = None,
    known_users: KnownUsers | None = None,
    live: Hub | None = None,
    metrics: ProcessMetrics | None = None,
) -> Quart:
    """The app. `known_users` keeps users' rows only while its listener runs (the run modes
    start it); without one, every request reads its visitor's row. `live` streams events only
    while it keeps up with them (the run modes start that too); without one, /events answers
    503 and pages open no stream. `metrics` are the process's (the run modes share them with
    the job side); without them, the app's own."""
    app = Quart(__name__, template_folder=str(assets.TEMPLATES_DIR), static_folder=None)
    app.request_class = requests_limited(LARGER_REQUESTS)
    _configure(app, settings)
    cache = Cache(pools.cache)
    metrics = metrics or process_metrics("web", instance_name, pools)
    card_stats = CacheStats()
    metrics.caches.watch("shared", cache.stats)
    metrics.caches.watch("cards", card_stats)
    transactions = transactions_with_duties(settings, pools, cache)
    static_files = assets.StaticFiles(assets.STATIC_DIR)
    templates = init_templating(app, static_files)
    hub = live or Hub(pools.primary)
    app.extensions[state.KEY] = state.AppState(
        settings=settings,
        pools=pools,
        transactions=transactions,
        cache=cache if settings.cache_enabled else None,
        instance_name=instance_name,
        draining=draining or asyncio.Event(),
        static_files=static_files,
        templates=templates,
        local_cards=local_cards(),
        card_markup=markup_version(templates),
        blank_compose=draw_blank_compose(templates),
        live=hub,
        card_stats=card_stats,
        metrics=metrics,
    )
    metrics.count_streams(lambda: hub.stream_count)
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["username"] = UsernameConverter
    app.url_map.strict_slashes = False

    app.before_request(observability.start_request)
    app.session_interface = sessions.CookieSessions()
    init_logins(app, known_users or KnownUsers(), transactions)
    # A logged-in writer's reads wait for a replica to replay their write (web/db.reading).
    follow_writes(app, transactions, carries=lambda: current_user() is not None)
    app.before_request(read_body_first)
    # After the user is known: post_user counts per user.
    init_rate_limits(app, settings.rate_limits)
    app.before_request(csrf.protect)
    app.after_request(security.add_security_headers)
    app.after_request(observability.finish_request)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    scrapes = MetricsEndpoint(
        app.asgi_app, metrics, trusted=settings.trusted_proxies, token=settings.metrics_token
    )
    app.asgi_app = ProxyHeadersMiddleware(scrapes, settings.trusted_proxies)
    return app


def process_metrics(role: str, instance_name: str, pools: Pools) -> ProcessMetrics:
    """The metrics of a process that runs this app, its job kinds, or both."""
    queues = {kind.queue for kind in JOB_KINDS.kinds.values()}
    return ProcessMetrics(role=role, instance=instance_name, pools=pools, queues=queues)


def _configure(app: Quart, settings: Settings) -> None:
    secret_key, fallbacks = sessions.signing_keys(settings)
    app.config.update(
        SECRET_KEY=secret_key,
        SECRET_KEY_FALLBACKS=fallbacks,
        SESSION_COOKIE_NAME="microblog_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        PERMANENT_SESSION_LIFETIME=sessions.SESSION_LIFETIME,
        # A session lasts 30 days from log-in; re-signing the cookie on every response would
        # cost every request a signature and a Set-Cookie header.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
        PREFER_SECURE_URLS=settings.is_production,
    )
