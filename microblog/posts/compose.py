"""The home page's blank compose form, drawn once per process.

It is the same on every home page but for the fields every form carries (the session's CSRF
token, the page to come back to), so it is drawn with a placeholder for them at start-up and
each page puts its own in (web/templating.py): drawing its four picture slots on every
request cost a tenth of the home page's time in Python.
"""

from __future__ import annotations

from jinja2 import Environment
from markupsafe import Markup

from microblog.posts.forms import NewPost
from microblog.web.state import state
from microblog.web.templating import PLACEHOLDER_FORMS, Pieces, in_pieces, with_page_forms


def draw_blank_compose(templates: Environment) -> Pieces:
    return in_pieces(
        templates.get_template("_compose.html").render(
            post=NewPost(body=""), forms=PLACEHOLDER_FORMS
        )
    )


def blank_compose() -> Markup:
    """The blank form, with this page's form fields."""
    return with_page_forms([state().blank_compose])
