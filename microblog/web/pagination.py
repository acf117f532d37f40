"""Keyset pagination: pages are addressed by the id of the last item seen, never an OFFSET."""

from __future__ import annotations

from quart import abort, request

from microblog.web.converters import parse_id

PAGE_SIZE = 20


def cursor(name: str) -> int | None:
    """The ?name= cursor: None when absent, 400 when it is not a post id."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    value = parse_id(raw)
    if value is None:
        abort(400, f"The page cursor '{name}' must be a positive whole number.")
    return value
