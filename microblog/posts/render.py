"""A post body as HTML: everything escaped, then links, @mentions and #hashtags made clickable.

The body is split into tokens by one regular expression; plain text between tokens is escaped,
and each token becomes an anchor whose every attribute is escaped too. Nothing from the body is
ever emitted unescaped, so no body can open a tag or an attribute.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from markupsafe import Markup, escape

_TOKEN = re.compile(
    r"""
    (?P<url>\bhttps?://[^\s<>"'`]+)
    | (?<![\w@/.])@(?P<mention>[A-Za-z0-9_]{1,30})(?![\w@])
    | (?<![\w#&/])\#(?P<tag>\w*[^\W\d]\w*)(?!\w)
    """,
    re.VERBOSE,
)
_TRAILING_PUNCTUATION = ".,;:!?*'\""
MAX_TAG_LENGTH = 100


def _trim_url(url: str) -> str:
    """Leave sentence punctuation, and a closing bracket with no opener, outside the link."""
    while url:
        last = url[-1]
        if last in _TRAILING_PUNCTUATION or (
            last in ")]}" and url.count(last) > url.count({")": "(", "]": "[", "}": "{"}[last])
        ):
            url = url[:-1]
        else:
            break
    return url


_HASHTAG = re.compile(r"\w*[^\W\d]\w*")


def is_hashtag(text: str) -> bool:
    return len(text) <= MAX_TAG_LENGTH and _HASHTAG.fullmatch(text) is not None


def tag_key(text: str) -> str | None:
    """The lower-cased tag that links and post_tags use, or None when it is not a hashtag.

    Lower-casing can lengthen a tag and add marks that are not word characters ("İ" becomes
    "i" plus a combining dot), so the lower-cased form is what must be valid: otherwise its
    link would 404 and its post_tags row would break the length limit.
    """
    key = text.lower()
    return key if is_hashtag(key) else None


def mentions(body: str) -> set[str]:
    """Lower-cased usernames mentioned in the body."""
    if "@" not in body:  # most posts: no need to tokenize
        return set()
    return {m["mention"].lower() for m in _TOKEN.finditer(body) if m["mention"]}


def hashtags(body: str) -> set[str]:
    """Lower-cased hashtags in the body."""
    return {key for m in _TOKEN.finditer(body) if m["tag"] and (key := tag_key(m["tag"]))}


def render_body(body: str, known_users: set[str]) -> Markup:
    """HTML for a body; @mentions link only when the lower-cased name is in known_users."""
    out: list[str] = []
    position = 0
    for match in _TOKEN.finditer(body):
        start, end = match.span()
        if match["url"]:
            url = _trim_url(match["url"])
            end = start + len(url)
            anchor = Markup('<a href="{0}" rel="nofollow noopener noreferrer ugc">{0}</a>').format(
                url
            )
        elif match["mention"]:
            name = match["mention"]
            if name.lower() not in known_users:
                continue
            anchor = Markup('<a class="mention" href="/@{0}">@{0}</a>').format(name)
        else:
            key = tag_key(match["tag"])
            if key is None:
                continue
            anchor = Markup('<a class="hashtag" href="/tags/{0}">#{1}</a>').format(
                quote(key), match["tag"]
            )
        out.append(escape(body[position:start]))
        out.append(anchor)
        position = end
    out.append(escape(body[position:]))
    return Markup("").join(out)
