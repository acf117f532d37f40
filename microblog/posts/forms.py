"""Validation of a new post or reply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from microblog.web.converters import parse_id
from microblog.web.forms import has_forbidden_characters

MAX_BODY = 500


@dataclass
class NewPost:
    body: str
    in_reply_to: int | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, form: Mapping[str, str]) -> NewPost:
        post = cls(body=form.get("body", "").replace("\r\n", "\n").strip())
        length = len(post.body)  # code points, as DESIGN counts them
        if length == 0:
            post.errors["body"] = "Write something first."
        elif length > MAX_BODY:
            post.errors["body"] = f"Posts are at most {MAX_BODY} characters; this one has {length}."
        elif has_forbidden_characters(post.body):
            post.errors["body"] = "Posts cannot contain control characters."
        reply_to = form.get("in_reply_to", "").strip()
        if reply_to:
            post.in_reply_to = parse_id(reply_to)
            if post.in_reply_to is None:
                post.errors["in_reply_to"] = "The post you are replying to does not exist."
        return post
