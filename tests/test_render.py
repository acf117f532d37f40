"""render_body: every body comes out escaped, with only our own links, and reads the same."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import quote, unquote

import pytest

from microblog.posts.render import (
    MAX_TAG_LENGTH,
    hashtags,
    is_hashtag,
    mentions,
    render_body,
    tag_key,
)

KNOWN = {"bob", "alice_1"}
ALLOWED_HREF_PREFIXES = ("http://", "https://", "/@", "/tags/")
ALLOWED_ATTRIBUTES = {"href", "rel", "class", "dir"}


@dataclass
class Anchor:
    attrs: dict[str, str]
    text: str = ""


class Parsed(HTMLParser):
    """What a browser would see in the output: tags, attributes, anchors and visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.anchors: list[Anchor] = []
        self.text: list[str] = []
        self.oddities: list[str] = []
        self._open: Anchor | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self._open = Anchor({name: value or "" for name, value in attrs})
            self.anchors.append(self._open)
        for name, _ in attrs:
            if name not in ALLOWED_ATTRIBUTES:
                self.oddities.append(f"attribute {name} on <{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.oddities.append(f"self-closing <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open is not None:
            self._open.text += data

    def handle_comment(self, data: str) -> None:
        self.oddities.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.oddities.append(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.oddities.append(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.oddities.append(f"unknown declaration {data!r}")


def parse(html: str) -> Parsed:
    parsed = Parsed()
    parsed.feed(html)
    parsed.close()
    return parsed


def assert_anchor_matches_its_text(anchor: Anchor, known: set[str]) -> None:
    """Each kind of link goes where its text says: a known profile, a tag page, the URL."""
    kind, href, text = anchor.attrs.get("class"), anchor.attrs["href"], anchor.text
    if kind == "mention":
        assert text[1:].lower() in known
        assert href == "/@" + text[1:]
    elif kind == "hashtag":
        assert href == "/tags/" + quote(text[1:].lower())
    else:
        assert href == (text if text.startswith(("http://", "https://")) else f"https://{text}")
        assert anchor.attrs["rel"] == "nofollow noopener noreferrer ugc"
    # Isolated, so that no bidirectional control outside the link can reorder its text.
    assert anchor.attrs.get("dir") == ("auto" if kind == "hashtag" else "ltr")


def assert_safe(body: str, known: set[str] = KNOWN) -> Parsed:
    """The safety contract of render_body, checked the way a browser would read the output."""
    html = str(render_body(body, known))
    parsed = parse(html)
    assert parsed.oddities == [], html
    assert set(parsed.tags) <= {"a", "bdi"}, html
    for anchor in parsed.anchors:
        href = anchor.attrs.get("href", "")
        assert href.startswith(ALLOWED_HREF_PREFIXES), html
        assert not re.search(r"[\s\"'<>`]", href), html
        assert_anchor_matches_its_text(anchor, known)
    assert "".join(parsed.text) == body, html
    # Outside our own anchor tags, nothing in the markup can start a tag or close an attribute.
    outside_tags = re.sub(
        r'<a (?:class="(?:mention|hashtag)" )?href="[^"]*"[^>]*>|</a>|</?bdi>', "", html
    )
    assert not re.search(r"[<>\"']", outside_tags), html
    return parsed


def links(body: str, known: set[str] = KNOWN) -> list[tuple[str, str]]:
    """(href, text) of every link in the rendered body."""
    return [(a.attrs["href"], a.text) for a in assert_safe(body, known).anchors]


# --- links -------------------------------------------------------------------------------------


def test_plain_text_is_left_as_text():
    assert links("just words, nothing to click") == []
    assert str(render_body("just words", set())) == "just words"


def test_url_becomes_a_nofollow_link_when_it_starts_with_http_or_https():
    body = "see http://example.com/a and https://example.org/b?x=1&y=2"
    html = str(render_body(body, set()))
    assert 'rel="nofollow noopener noreferrer ugc"' in html
    assert "&amp;y=2" in html
    assert links(body) == [
        ("http://example.com/a", "http://example.com/a"),
        ("https://example.org/b?x=1&y=2", "https://example.org/b?x=1&y=2"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        "ftp://example.com/",
        "xhttp://example.com/",
        "example.com",
        "www.example",
        "wwwexample.org",
        "me@www.example.org",
        "a.www.example.org",
        "http:/example.com",
        "mailto:a@b",
    ],
)
def test_url_is_not_linked_when_it_has_another_scheme_or_no_scheme(body):
    assert links(body) == []


@pytest.mark.parametrize(
    ("body", "url"),
    [
        ("go to http://example.com.", "http://example.com"),
        ("http://example.com/path, then", "http://example.com/path"),
        ("really? http://example.com/?!", "http://example.com/"),
        ("http://example.com/x;: and", "http://example.com/x"),
        ('"http://example.com/quoted"', "http://example.com/quoted"),
        ("(see http://example.com/a)", "http://example.com/a"),
        ("(http://en.wikipedia.org/wiki/Foo_(bar))", "http://en.wikipedia.org/wiki/Foo_(bar)"),
        ("[http://example.com/list]", "http://example.com/list"),
        ("*http://example.com/bold*", "http://example.com/bold"),
        ("http://example.com/a.b.c...", "http://example.com/a.b.c"),
    ],
)
def test_url_leaves_trailing_punctuation_outside_the_link(body, url):
    assert links(body) == [(url, url)]


def test_www_address_becomes_an_https_link_that_reads_as_typed():
    assert links("see www.example.org, or www.example.org:8080/a?b=1#c.") == [
        ("https://www.example.org", "www.example.org"),
        ("https://www.example.org:8080/a?b=1#c", "www.example.org:8080/a?b=1#c"),
    ]
    assert links("http://www.example.org/x") == [
        ("http://www.example.org/x", "http://www.example.org/x")
    ]


# Each control that reorders text: the embeddings and overrides, the isolates, and the marks.
BIDI_CONTROLS = [
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
    "\u200e",
    "\u200f",
    "\u061c",
]


@pytest.mark.parametrize("control", BIDI_CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_bidi_control_ends_a_link_so_the_link_text_cannot_be_reordered(control):
    # "\u202egpj.exe" shows as "exe.jpg": inside a link it would disguise the address.
    for url in ("https://example.com/", "www.example.org/"):
        body = f"{url}{control}gpj.exe and {control}{url}x{control}"
        shown = links(body)
        assert [text for _, text in shown] == [url, f"{url}x"]
        assert all(control not in href for href, _ in shown)


def test_text_with_a_bidi_control_is_isolated_so_it_cannot_move_the_links_around_it():
    html = str(render_body("a https://example.com/\u202etxt.exe #tag b", KNOWN))
    assert html == (
        'a <a href="https://example.com/" rel="nofollow noopener noreferrer ugc" dir="ltr">'
        "https://example.com/</a><bdi>\u202etxt.exe </bdi>"
        '<a class="hashtag" href="/tags/tag" dir="auto">#tag</a> b'
    )
    assert "<bdi>" not in str(render_body("plain text, https://example.com/ and #tag", KNOWN))


def test_every_link_isolates_its_text_from_the_text_around_it():
    html = str(render_body("\u202e@bob #lived https://example.com/ www.example.org", KNOWN))
    assert html.count('dir="ltr"') == 3
    assert html.count('dir="auto"') == 1
    assert links("\u202e@bob #lived https://example.com/ www.example.org")


def test_url_swallows_mentions_and_hashtags_inside_it():
    url = "https://example.com/@bob/status#tag"
    assert links(f"{url} ok") == [(url, url)]


# --- mentions ----------------------------------------------------------------------------------


def test_mention_links_to_the_profile_when_the_user_exists():
    assert links("hi @bob!") == [("/@bob", "@bob")]


def test_mention_is_plain_text_when_the_user_does_not_exist():
    assert links("hi @nobody") == []


def test_mention_matches_known_users_in_any_case_and_keeps_the_typed_case():
    assert links("@Bob and @ALICE_1") == [("/@Bob", "@Bob"), ("/@ALICE_1", "@ALICE_1")]


@pytest.mark.parametrize(
    "body",
    [
        "mail me at me@bob",
        "a@bob.b",
        "@@bob",
        "path/@bob",
        "@bob@example.com",
        "@" + "b" * 31,
    ],
)
def test_mention_is_not_linked_inside_addresses_or_when_too_long(body):
    assert links(body, KNOWN | {"b" * 31}) == []


def test_mention_is_linked_next_to_punctuation():
    assert links("(@bob), @bob's; @bob.") == [("/@bob", "@bob")] * 3


def test_mentions_lists_lower_cased_names_once():
    assert mentions("@Bob @bob @Carol me@dave http://x.com/@erin") == {"bob", "carol"}


# --- hashtags ----------------------------------------------------------------------------------


def test_hashtag_links_to_its_lower_cased_tag_page():
    assert links("I like #Python.") == [("/tags/python", "#Python")]


def test_hashtag_with_letters_beyond_ascii_is_percent_encoded_in_the_link():
    assert links("#Café #日本") == [
        ("/tags/" + quote("café"), "#Café"),
        ("/tags/" + quote("日本"), "#日本"),
    ]


@pytest.mark.parametrize(
    "body",
    ["#123", "issue#5", "a#tag", "##tag", "&#tag", "/#tag", "#", "# tag", "#" + "a" * 101],
)
def test_hashtag_is_not_linked_when_it_is_digits_glued_or_too_long(body):
    assert links(body) == []


def test_hashtag_may_mix_digits_and_underscores():
    assert links("#1st #snake_case #a" + "b" * (MAX_TAG_LENGTH - 2)) == [
        ("/tags/1st", "#1st"),
        ("/tags/snake_case", "#snake_case"),
        ("/tags/a" + "b" * (MAX_TAG_LENGTH - 2), "#a" + "b" * (MAX_TAG_LENGTH - 2)),
    ]


def test_hashtag_joins_words_with_single_hyphens_and_records_what_it_links():
    body = "#a-b #Open-Source #covid-19 #end- #a--b #2024-25 #-x"
    assert links(body) == [
        ("/tags/a-b", "#a-b"),
        ("/tags/open-source", "#Open-Source"),
        ("/tags/covid-19", "#covid-19"),
        ("/tags/end", "#end"),
        ("/tags/a", "#a"),
    ]
    # post_tags rows hold exactly the tags the links lead to.
    assert hashtags(body) == {"a-b", "open-source", "covid-19", "end", "a"}
    assert tag_key("a-b") == "a-b"
    assert tag_key("a--b") is None
    assert tag_key("-a") is None


def test_hashtags_lists_lower_cased_tags_once():
    assert hashtags("#Tag #TAG #other #123 a#glued") == {"tag", "other"}


@pytest.mark.parametrize(
    "body",
    ["#İstanbul", "#" + "İ" * 60, "#Straße #ǅemal #ΣΊΣΥΦΟΣ", "#e\u0301t\u00e9"],
    ids=["dotted-capital-i", "sixty-dotted-capital-i", "sharp-s-title-case-sigma", "combining"],
)
def test_every_hashtag_link_leads_to_a_tag_page_that_exists_when_lower_casing_changes_letters(
    body,
):
    # A tag is stored and linked in lower case; that form must itself be a valid, storable tag,
    # or the link 404s and the post_tags row breaks its length limit.
    stored = hashtags(body)
    assert all(is_hashtag(tag) and len(tag) <= MAX_TAG_LENGTH for tag in stored)
    linked = {unquote(href.removeprefix("/tags/")) for href, _ in links(body)}
    assert linked == stored


# --- safety ------------------------------------------------------------------------------------

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=http://evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<a href="javascript:alert(1)">click</a>',
    "<a href=http://example.com/>x</a>",
    "<style>body{background:url('javascript:alert(1)')}</style>",
    "<!-- a comment --><b>bold</b>",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<?xml version='1.0'?><!DOCTYPE html>",
    '" onmouseover="alert(1)',
    "' onmouseover='alert(1)",
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    'http://x/"><img src=x onerror=alert(1)>',
    "http://x/'><img src=x onerror=alert(1)>",
    "http://x/`onmouseover=alert(1)`",
    "http://x.com/ onmouseover=alert(1)//",
    "https://example.com/?q=<script>alert(1)</script>",
    "http://x.com/</a><script>alert(1)</script>",
    "http://x.com/&quot;onmouseover=alert(1)",
    "http://x.com/?a=\"b\"&c='d'",
    "http://x.com/#<img src=x>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "&#x3C;img src=x onerror=alert(1)&#x3E;",
    "&amp; &amp;amp; &#38; &#0; &nbsp; &bogus;",
    "@bob<script>alert(1)</script>",
    '@bob"onmouseover="alert(1)',
    "<b>@bob</b> and <i>#tag</i> and <u>http://x.com/</u>",
    "#tag<img src=x onerror=alert(1)>",
    '#tag"onmouseover="alert(1)',
    "&#tag; &#x41; #&lt;b&gt;",
    '"@bob" \'#tag\' "http://x.com/" `@bob`',
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",  # full-width brackets
    "\u202eevil\u202c http://x.com/\u200b#tag\u00a0@bob",
    "👩\u200d💻 #café @bob ✓ \U0001d518\U0001d52b\U0001d526",  # ZWJ emoji, Fraktur letters
    "{{ 7 * 7 }} {% raw %} ${alert(1)} <%= 1 %>",
    "line one\nline <two>\r\n\ttabbed & done",
]


def test_the_payload_corpus_is_large_enough():
    assert len(XSS_PAYLOADS) >= 25


@pytest.mark.parametrize("body", XSS_PAYLOADS)
def test_payload_renders_as_text_with_only_safe_links(body):
    assert_safe(body)


@pytest.mark.parametrize("body", XSS_PAYLOADS)
def test_payload_renders_safely_when_every_mention_is_known(body):
    assert_safe(body, known=set(mentions(body)) | KNOWN)


def test_attribute_breakout_inside_a_url_stays_inside_the_text():
    parsed = assert_safe('http://x/"><img src=x onerror=alert(1)>')
    assert [a.attrs["href"] for a in parsed.anchors] == ["http://x/"]
    assert parsed.tags == ["a"]


def test_javascript_url_is_never_a_link():
    assert links("javascript:alert(1) JAVASCRIPT://http://x.com/") == [
        ("http://x.com/", "http://x.com/")
    ]
