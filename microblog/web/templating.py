"""What every template may use: URLs of static files, the CSRF token, the viewer, and times."""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from markupsafe import Markup
from quart import Quart, g, request
from quart.templating import Environment as QuartEnvironment

from microblog.web.csrf import csrf_token
from microblog.web.forms import local_path, site_path
from microblog.web.htmx import is_htmx

if TYPE_CHECKING:
    from microblog.web.assets import StaticFiles


def relative_time(moment: datetime, now: datetime | None = None) -> str:
    """'just now', '5m', '3h', '2d', then a date: short, like every microblog."""
    now = now or datetime.now(UTC)
    seconds = int((now - moment).total_seconds())
    if seconds < 3600:
        return "just now" if seconds < 45 else f"{max(1, round(seconds / 60))}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    if seconds < 7 * 86400:
        return f"{seconds // 86400}d"
    if moment.year == now.year:
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
    """This page's form fields, made once for the page (its cards and its compose form ask),
    and again should the request have changed the session's token since."""
    token = csrf_token()
    made = g.get("page_forms")
    if made is not None and made[0] == token:
        return made[1]
    # Markup's % escapes its arguments as .format does, without string.Formatter's Python.
    forms = PageForms(
        hidden=Markup(
            '<input type="hidden" name="csrf_token" value="%s">'
            '<input type="hidden" name="next" value="%s">'
        )
        % (token, here())
    )
    g.page_forms = (token, forms)
    return forms


# HTML drawn once for many pages (post cards, the blank compose form) carries this in place of
# the page's form fields; it is kept cut there (in_pieces), and with_page_forms joins the pieces
# with this page's fields: a join of pieces cut once costs a seventh of replacing the
# placeholders in a page's cards on every request.
PLACEHOLDER_FORMS = PageForms(hidden=Markup("<!--form-fields-->"))
_FORM_FIELDS = str(PLACEHOLDER_FORMS.hidden)

Pieces = tuple[str, ...]


def in_pieces(drawn: str) -> Pieces:
    """HTML drawn with PLACEHOLDER_FORMS (our own, escaped), cut where the form fields go."""
    return tuple(drawn.split(_FORM_FIELDS))


def with_page_forms(drawn: Iterable[Pieces]) -> Markup:
    """Drawn HTML, one after the other, with this page's form fields where they go."""
    fields = str(page_forms().hidden)
    return Markup("".join([fields.join(pieces) for pieces in drawn]))  # noqa: S704


class _Templates(QuartEnvironment):
    def make_globals(self, d: dict[str, Any] | None) -> MutableMapping[str, Any]:
        # No template here has globals of its own, so each renders from the environment's
        # globals themselves, not from a ChainMap over them, which Jinja copies into every
        # render's context in Python: 6 us of each template drawn, 4 on a timeline page.
        return self.globals if not d else super().make_globals(d)


def init_templating(app: Quart, static_files: StaticFiles) -> Environment:
    """The app's templates, with what every template may use, for rendering without awaits."""
    assert "jinja_env" not in vars(app), "the templates' class is set before they are made"
    app.jinja_environment = _Templates
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
