"""What a search box's text asks for: words for full-text search, and filters.

`from:username` keeps the posts of one author, `#tag` the posts with that hashtag; everything
else is handed whole to PostgreSQL's websearch_to_tsquery, which understands "quoted phrases",
`or` and `-word`, and never fails on stray syntax. A filter that names nothing (`from:` alone,
or `#` alone) stays part of the words, where it matches nothing and breaks nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from microblog.posts.render import tag_key

MAX_QUERY_LENGTH = 1000
_AUTHOR = re.compile(r"(?<!\S)from:@?([A-Za-z0-9_]{1,30})(?!\S)", re.IGNORECASE)
_TAG = re.compile(r"(?<![\S])#(\w+(?:-\w+)*)(?!\S)")
# A name worth looking up among people: a few words of what names are made of, not a search
# with phrases, or-ed or left-out words.
_NAME = re.compile(r"@?[\w.'-]+(?: [\w.'-]+){0,3}")
_OPERATOR = re.compile(r"(?:^|\s)(?:-|or(?:\s|$))", re.IGNORECASE)


@dataclass(frozen=True)
class Query:
    words: str  # for websearch_to_tsquery; may be empty
    author: str | None  # from:, lower-cased
    tags: tuple[str, ...]  # #tag, lower-cased, as post_tags keeps them

    @property
    def finds_posts(self) -> bool:
        return bool(self.words.strip() or self.author or self.tags)

    @property
    def name(self) -> str | None:
        """What to look for among people: the words alone, when there are no filters."""
        words = self.words.strip()
        if self.author or self.tags or not _NAME.fullmatch(words) or _OPERATOR.search(words):
            return None
        return words.lstrip("@").lower()[:50]


def parse(text: str) -> Query:
    authors = [match.group(1).lower() for match in _AUTHOR.finditer(text)]
    rest = _AUTHOR.sub(" ", text)
    tags = []
    for match in _TAG.finditer(rest):
        key = tag_key(match.group(1))
        if key is not None:
            tags.append(key)
    if tags:
        rest = _TAG.sub(lambda m: " " if tag_key(m.group(1)) else m.group(0), rest)
    # Only one author can have written a post: the last from: wins.
    return Query(
        words=" ".join(rest.split()),
        author=authors[-1] if authors else None,
        tags=tuple(dict.fromkeys(tags)),
    )
