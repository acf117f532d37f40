"""What every template may use: URLs of static files, the CSRF token, the viewer, and times."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from jinja2 import Environment
from markupsafe import Markup
from quart import Quart, request

from microblog.web.csrf import csrf_token
from microblog.web.forms import local_path, site_path
from microblog.web.htmx import is_htmx

if TYPE_CHECKING:
    from microblog.web.assets import StaticFiles


def relative_time(moment: datetime, now: datetime | None = None) -> str:
    """'just now', '5m', '3h', '2d', then a date: short, like every microblog."""
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    if seconds < 7 * 86400:
        return f"{seconds // 86400}d"
    if moment.year == (now or datetime.now(UTC)).year:
        return f"{moment:%b} {moment.day}"
    return f"{moment:%b} {moment.day}, {moment.year}"


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# Embeddings, overrides and isolates: the bidirectional controls that open or close a run.
_BIDI_RUNS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def isolate(text: str) -> str:
    """User text for places that take no markup (<title>): between FIRST STRONG ISOLATE and
    POP DIRECTIONAL ISOLATE, so it cannot reorder what follows, and without controls that open
    or close runs of their own (one of its own POP DIRECTIONAL ISOLATE would end ours)."""
    return f"\u2068{_BIDI_RUNS.sub('', text)}\u2069"


def initial(name: str) -> str:
    """The letter a picture-less avatar shows: the name's first letter or digit, else its first
    visible character; never a control, which would show nothing or reorder the text."""
    shown = (c for c in name if c.isprintable() and not c.isspace())
    return next((c for c in name if c.isalnum()), next(shown, "?")).upper()


def here() -> str:
    """The page the visitor is on, for forms that should come back to it.

    For an htmx request that is the page htmx was called from, not the fragment's own URL.
    """
    if is_htmx() and (page := site_path(request.headers.get("HX-Current-URL"))) is not None:
        return local_path(page)
    return request.full_path.rstrip("?")


@dataclass(frozen=True)
class PageForms:
    """What every form on a page carries, rendered once per page instead of once per form."""

    hidden: Markup


def page_forms() -> PageForms:
    # Markup's % escapes its arguments as .format does, without string.Formatter's Python.
    return PageForms(
        hidden=Markup(
            '<input type="hidden" name="csrf_token" value="%s">'
            '<input type="hidden" name="next" value="%s">'
        )
        % (csrf_token(), here())
    )


# HTML drawn once for many pages (post cards, the blank compose form) carries this in place of
# the page's form fields; with_page_forms puts them in.
PLACEHOLDER_FORMS = PageForms(hidden=Markup("<!--form-fields-->"))
_FORM_FIELDS = str(PLACEHOLDER_FORMS.hidden)


def with_page_forms(drawn: str) -> Markup:
    """HTML drawn with PLACEHOLDER_FORMS (our own, escaped), with this page's form fields."""
    return Markup(drawn.replace(_FORM_FIELDS, str(page_forms().hidden)))  # noqa: S704


def init_templating(app: Quart, static_files: StaticFiles) -> Environment:
    """The app's templates, with what every template may use, for rendering without awaits."""
    app.jinja_env.globals.update(
        static=static_files.urls,
        csrf_token=csrf_token,
        here=here,
        page_forms=page_forms,
    )
    app.jinja_env.filters.update(
        relative_time=relative_time, iso_time=iso_time, isolate=isolate, initial=initial
    )
    app.jinja_env.add_extension("jinja2.ext.do")
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    templates = app.jinja_env.overlay(enable_async=False)
    # The shared macros (templates/macros.html) as one global, `macros.csrf()` and the like:
    # `{% from "macros.html" import ... %}` costs every render a set difference over the
    # globals in Python, twice on every timeline page.
    templates.globals["macros"] = templates.get_template("macros.html").module
    return templates
