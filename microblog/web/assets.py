"""Templates and static files, and content-hashed static URLs.

In the wheel and the .pyz, templates/ and static/ travel inside the package; in a source
checkout they sit at the top of the repository (where nginx serves static/ from disk).
A hashed URL (/static/app.3f2a9c1b7e4d.css) is served immutable for a year; a URL whose hash is
not the current file's (a page rendered by an older instance during a rolling deploy) still gets
the file, but with no-cache, so no cache keeps the wrong bytes under that name.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from quart import Blueprint, Response, abort, send_file

from microblog.web.ratelimits import exempt
from microblog.web.state import state

_PACKAGE = Path(__file__).resolve().parent.parent


def _resource_dir(name: str) -> Path:
    packaged = _PACKAGE / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


TEMPLATES_DIR = _resource_dir("templates")
STATIC_DIR = _resource_dir("static")

IMMUTABLE = "public, max-age=31536000, immutable"
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<suffix>\.[A-Za-z0-9]+)$")


class UnknownStaticFile(Exception):
    """A template named a static file there is not. Not a LookupError: Jinja would render
    the missing URL as an empty string."""


class StaticUrls(dict[str, str]):
    """Each static file's hashed URL, as templates take them: `static['app.css']`."""

    def __missing__(self, name: str) -> str:
        raise UnknownStaticFile(name)


def _hashed_name(name: str, digest: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"/static/{stem}.{digest}{dot}{suffix}"


class StaticFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.digests = {
            path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[
                :12
            ]
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }

        # Made once: every page asks for four or five of them.
        self.urls = StaticUrls(
            (name, _hashed_name(name, digest)) for name, digest in self.digests.items()
        )

    def resolve(self, requested: str) -> tuple[Path, bool] | None:
        """The file behind a requested name, and whether the URL's hash is current."""
        name, current = requested, False
        match = _HASHED.match(requested)
        if match:
            name = match["stem"] + match["suffix"]
            current = self.digests.get(name) == match["digest"]
        if name not in self.digests:
            return None
        return self.directory / name, current


blueprint = Blueprint("static_files", __name__)


@blueprint.route("/static/<path:filename>")
@exempt
async def static_file(filename: str) -> Response:
    found = state().static_files.resolve(filename)
    if found is None:
        abort(404)
    path, current = found
    response = await send_file(path, conditional=True)
    response.headers["Cache-Control"] = IMMUTABLE if current else "no-cache"
    return response
