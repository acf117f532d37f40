"""Validation of a new post or reply: its text, and the pictures that may stand in for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from werkzeug.datastructures import FileStorage, MultiDict

from microblog.post_pictures.forms import Pictures
from microblog.web.converters import parse_id
from microblog.web.forms import has_forbidden_characters

MAX_BODY = 500


@dataclass
class NewPost:
    body: str
    in_reply_to: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    pictures: Pictures = field(default_factory=Pictures)

    @classmethod
    def parse(
        cls, form: Mapping[str, str], files: MultiDict[str, FileStorage] | None = None
    ) -> NewPost:
        post = cls(body=form.get("body", "").replace("\r\n", "\n").strip())
        post.pictures = Pictures.parse(form, files or MultiDict())
        if post.pictures.error:
            post.errors["pictures"] = post.pictures.error
        length = len(post.body)  # code points, as DESIGN counts them
        if length == 0 and (post.pictures.uploads or post.pictures.error):
            pass  # a picture may speak for itself (and one refused is said to be)
        elif length == 0:
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
