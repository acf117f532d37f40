"""URL converters: ids that fit a bigint, usernames of the allowed shape; anything else is 404."""

from __future__ import annotations

from werkzeug.routing import BaseConverter, ValidationError

from microblog.db.keyset import BIGINT_MAX


def parse_id(text: str | None) -> int | None:
    """A positive bigint from user input, or None."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= BIGINT_MAX else None


class IdConverter(BaseConverter):
    regex = r"\d{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


class UsernameConverter(BaseConverter):
    regex = r"[A-Za-z0-9_]{1,30}"
