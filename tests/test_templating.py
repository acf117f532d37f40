"""The templates' environment: what every template sees, and when."""

from __future__ import annotations

from quart import Quart

from microblog.web.assets import STATIC_DIR, TEMPLATES_DIR, StaticFiles
from microblog.web.templating import init_templating


def _templates():
    app = Quart(__name__, template_folder=str(TEMPLATES_DIR), static_folder=None)
    return app, init_templating(app, StaticFiles(STATIC_DIR))


def test_a_template_sees_globals_registered_after_it_was_loaded():
    # Blueprints register their template globals after the first templates were loaded.
    app, templates = _templates()
    page = templates.from_string("{{ late() if late is defined else 'missing' }}")
    assert page.render() == "missing"
    app.jinja_env.globals["late"] = lambda: "seen"
    assert page.render() == "seen"


def test_a_template_with_globals_of_its_own_keeps_them_to_itself():
    _, templates = _templates()
    own = templates.from_string("{{ colour }}", globals={"colour": "green"})
    assert own.render() == "green"
    assert "colour" not in templates.globals
    assert templates.from_string("{{ colour is defined }}").render() == "False"
