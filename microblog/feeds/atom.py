"""Atom 1.0 (RFC 4287) documents of posts, with absolute links from the site's origin.

Built with ElementTree, which escapes every text and attribute: a post's text can never become
markup of the feed. A post's HTML, as pages draw it, travels escaped in `content type="html"`;
its links are site paths, resolved by readers against the feed's xml:base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.etree import ElementTree

from microblog.posts.queries import PostView
from microblog.posts.render import render_body

NAMESPACE = "http://www.w3.org/2005/Atom"
TITLE_LENGTH = 80


@dataclass(frozen=True)
class Feed:
    path: str  # of the feed itself, such as /@alice/feed.atom
    page: str  # of the page it follows, such as /@alice
    title: str
    updated: datetime  # of the newest post, or when the feed began


def _title(body: str) -> str:
    line = " ".join(body.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


def _add(parent: ElementTree.Element, tag: str, text: str | None = None, **attributes: str):
    element = ElementTree.SubElement(parent, tag, attributes)
    element.text = text
    return element


def atom(feed: Feed, posts: Sequence[PostView], origin: str) -> str:
    root = ElementTree.Element("feed", {"xmlns": NAMESPACE, "xml:base": origin + "/"})
    _add(root, "id", origin + feed.path)
    _add(root, "title", feed.title)
    _add(root, "updated", feed.updated.isoformat())
    _add(root, "link", rel="self", type="application/atom+xml", href=origin + feed.path)
    _add(root, "link", rel="alternate", type="text/html", href=origin + feed.page)
    _add(root, "generator", "microblog")
    for post in posts:
        entry = _add(root, "entry")
        url = f"{origin}/posts/{post.id}"
        _add(entry, "id", url)
        _add(entry, "title", _title(post.body))
        _add(entry, "updated", post.created_at.isoformat())
        _add(entry, "published", post.created_at.isoformat())
        _add(entry, "link", rel="alternate", type="text/html", href=url)
        author = _add(entry, "author")
        _add(author, "name", post.author_name)
        _add(author, "uri", f"{origin}/@{post.author_username}")
        _add(entry, "content", str(render_body(post.body, set(post.mentioned))), type="html")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(root, "unicode")
