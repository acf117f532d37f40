"""/admin: the operators' console. A page of sections, each also served alone as a fragment
that the page reloads every few seconds (htmx), and POST actions that redirect back to it.

To anyone but an operator every address here answers 404, as an address that does not exist.
CSRF is checked for every POST by the app (web/csrf.py), before this blueprint runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from quart import Blueprint, Response, abort, redirect, request

from microblog import __version__
from microblog.admin import queries, sections
from microblog.admin.actions import Operator
from microblog.background import recurring_jobs
from microblog.db.pools import acquire
from microblog.db.transactions import ACQUIRE_TIMEOUT
from microblog.jobs import admin as jobs_admin
from microblog.jobs.recurring import run_now
from microblog.users.sessions import current_user
from microblog.web.db import connection
from microblog.web.htmx import html, render
from microblog.web.state import state

blueprint = Blueprint("admin", __name__, url_prefix="/admin")
KIND_MAX_LENGTH = 200


@blueprint.before_request
async def operators_only() -> None:
    user = current_user()
    if user is None:
        abort(404)
    async with connection() as conn:
        if not await queries.is_operator(conn, user.id):
            abort(404)


def _operator() -> Operator:
    app, user = state(), current_user()
    return Operator(app.pools, app.transactions, id=user.id, name=user.username)


def _kind(values: Any) -> str | None:
    kind = (values.get("kind") or "").strip() or None
    if kind is not None and len(kind) > KIND_MAX_LENGTH:
        abort(422, "That is not the name of a job kind.")
    return kind


async def _queues() -> dict[str, Any]:
    return {"queues": await sections.queues(state().pools)}


async def _failed() -> dict[str, Any]:
    return {"failed": await sections.failed(state().pools, _kind(request.args))}


async def _recurring() -> dict[str, Any]:
    tasks = recurring_jobs(state().settings)
    return {"recurring": await sections.recurring(state().pools, tasks)}


async def _processes() -> dict[str, Any]:
    app = state()
    found = await sections.processes_section(app.pools, app.settings.heartbeat_timeout)
    return {"processes": found, "instance_name": app.instance_name, "version": __version__}


async def _cache() -> dict[str, Any]:
    app = state()
    stats = app.cache.stats if app.cache is not None else None
    found = await sections.cache(
        app.pools,
        enabled=app.cache is not None,
        hits=stats.hits if stats else 0,
        misses=stats.misses if stats else 0,
    )
    return {"cache": found, "card_stats": app.card_stats}


async def _replicas() -> dict[str, Any]:
    app = state()
    return {"replicas": sections.replicas(app.pools), "max_lag": app.settings.replica_max_lag}


async def _connections() -> dict[str, Any]:
    return {"connections": await sections.connections(state().pools)}


async def _audit() -> dict[str, Any]:
    return {"audit": await sections.audit(state().pools)}


# The sections in page order: name, title, and what its template needs.
SECTIONS: dict[str, tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = {
    "queues": ("Queues", _queues),
    "failed": ("Failed jobs", _failed),
    "recurring": ("Recurring jobs", _recurring),
    "processes": ("Processes", _processes),
    "cache": ("Cache", _cache),
    "replicas": ("Replicas", _replicas),
    "connections": ("Database connections", _connections),
    "audit": ("Audit log", _audit),
}


@blueprint.get("")
async def console() -> Response:
    context: dict[str, Any] = {}
    for _, load in SECTIONS.values():
        context.update(await load())
    return await html("admin.html", sections=SECTIONS, **context)


def _section_view(name: str) -> Callable[[], Awaitable[Response]]:
    title, load = SECTIONS[name]

    async def view() -> Response:
        return await render(
            "admin_section.html", f"_admin_{name}.html", section=name, title=title, **await load()
        )

    view.__name__ = f"section_{name}"
    return view


for _name in SECTIONS:
    blueprint.add_url_rule(f"/{_name}", view_func=_section_view(_name), methods=["GET"])


@blueprint.get("/jobs/<id:job_id>")
async def job(job_id: int) -> Response:
    """One job, however it stands: where an operator watches a retried job run."""
    async with acquire(state().pools.queue, ACQUIRE_TIMEOUT) as conn:
        found = await jobs_admin.job(conn, job_id)
    if found is None:
        abort(404, f"There is no job {job_id}: it never existed, or it finished long ago.")
    return await render("admin_job.html", "_admin_job.html", job=found)


def _back(section: str, kind: str | None = None) -> Response:
    query = f"?kind={quote(kind)}" if kind else ""
    return redirect(f"/admin{query}#{section}", 303)


@blueprint.post("/jobs/<id:job_id>/retry")
async def retry_job(job_id: int) -> Response:
    retried = await _operator().on_queue(
        lambda conn: jobs_admin.retry(conn, job_id), "retry job", f"job {job_id}"
    )
    if not retried:
        abort(409, f"Job {job_id} is not a failed job: it may have been retried or discarded.")
    return _back("failed", _kind(await request.form))


@blueprint.post("/jobs/<id:job_id>/discard")
async def discard_job(job_id: int) -> Response:
    discarded = await _operator().on_queue(
        lambda conn: jobs_admin.discard(conn, job_id), "discard job", f"job {job_id}"
    )
    if not discarded:
        abort(409, f"Job {job_id} is not a failed or pending job: nothing was discarded.")
    return _back("failed", _kind(await request.form))


@blueprint.post("/jobs/retry")
async def retry_matching() -> Response:
    kind = _kind(await request.form)
    await _operator().retry_matching(kind)
    return _back("failed", kind)


@blueprint.post("/jobs/discard")
async def discard_matching() -> Response:
    kind = _kind(await request.form)
    await _operator().discard_matching(kind)
    return _back("failed", kind)


@blueprint.post("/recurring/<name>/run")
async def run_recurring(name: str) -> Response:
    task = next((t for t in recurring_jobs(state().settings) if t.name == name), None)
    if task is None:
        abort(404, f"There is no recurring job called {name}.")

    async def enqueue(conn) -> int:
        return await run_now(conn, task) or True

    await _operator().on_queue(enqueue, "run recurring job now", task.name)
    return _back("recurring")
