"""A post body or a bio as HTML: everything escaped, then links, @mentions and #hashtags made
clickable.

The text is split into tokens by one regular expression; plain text between tokens is escaped,
and each token becomes an anchor whose every attribute is escaped too. Nothing from the text is
ever emitted unescaped, so no text can open a tag or an attribute.

Bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE and its kin) can make text read in
another order than it is stored: "moc.elpmaxe" shown as "example.com". They end a link, so a
link never contains one; every anchor isolates its text (`dir`), so a control before it cannot
reorder what it says; and a run of plain text with a control in it is isolated too (<bdi>), so
it reorders only itself, never the links around it (which could move one link next to another,
to read as one address).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from markupsafe import Markup, escape

# Embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the marks
# (U+200E, U+200F, U+061C): all of them reorder or re-type the text around them.
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_URL_CHARACTER = rf"[^\s<>\"'`{_BIDI_CONTROLS}]"
_BIDI_CONTROL = re.compile(f"[{_BIDI_CONTROLS}]")

_TOKEN = re.compile(
    rf"""
    (?P<url>\bhttps?://{_URL_CHARACTER}+)
    | (?<![\w@/.-])(?P<www>www\.[\w-]+(?:\.[\w-]+)+(?::\d+)?(?:[/?\#]{_URL_CHARACTER}*)?)
    | (?<![\w@/.])@(?P<mention>[A-Za-z0-9_]{{1,30}})(?![\w@])
    | (?<![\w\#&/])\#(?P<tag>\w+(?:-\w+)*)
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


# A tag is words (letters, digits, underscores) joined by single hyphens, as in #open-source,
# with at least one letter or underscore: #2024 is a number, not a tag. The help text next to
# the compose box and the bio field says so.
_HASHTAG = re.compile(r"\w+(?:-\w+)*")
_NOT_A_DIGIT = re.compile(r"[^\W\d]")


def is_hashtag(text: str) -> bool:
    return (
        len(text) <= MAX_TAG_LENGTH
        and _HASHTAG.fullmatch(text) is not None
        and _NOT_A_DIGIT.search(text) is not None
    )


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
    """HTML for a body; @mentions link only when the lower-cased name is in known_users.

    URLs and mentions read left to right whatever surrounds them (dir="ltr"); a hashtag may be
    a word of any script and takes the direction of its own letters (dir="auto").
    """
    out: list[str] = []
    position = 0
    for match in _TOKEN.finditer(body):
        start, end = match.span()
        if link := match["url"] or match["www"]:
            text = _trim_url(link)
            end = start + len(text)
            href = text if match["url"] else f"https://{text}"
            anchor = Markup(
                '<a href="{0}" rel="nofollow noopener noreferrer ugc" dir="ltr">{1}</a>'
            ).format(href, text)
        elif match["mention"]:
            name = match["mention"]
            if name.lower() not in known_users:
                continue
            anchor = Markup('<a class="mention" href="/@{0}" dir="ltr">@{0}</a>').format(name)
        else:
            key = tag_key(match["tag"])
            if key is None:
                continue
            anchor = Markup('<a class="hashtag" href="/tags/{0}" dir="auto">#{1}</a>').format(
                quote(key), match["tag"]
            )
        out.append(_text(body[position:start]))
        out.append(anchor)
        position = end
    out.append(_text(body[position:]))
    return Markup("").join(out)


def _text(run: str) -> Markup:
    """Plain text, escaped; isolated when it holds a bidirectional control (most never do)."""
    if _BIDI_CONTROL.search(run) is None:
        return escape(run)
    return Markup("<bdi>{0}</bdi>").format(run)
