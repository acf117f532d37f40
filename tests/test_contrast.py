"""Colours of static/app.css that WCAG puts a number on, read from the stylesheet itself."""

from __future__ import annotations

import re

import pytest

from microblog.web.assets import STATIC_DIR

# The focus ring is drawn 2px outside the focused element, over what surrounds it: the page,
# a card, or a soft accent area (notices, hovered actions).
FOCUS_RING_BACKGROUNDS = ("--bg", "--surface", "--accent-soft")
NON_TEXT_CONTRAST = 3.0  # WCAG 2.1, 1.4.11 Non-text Contrast


def colour_schemes(css: str) -> dict[str, dict[str, str]]:
    """The custom properties of the light :root and of the dark one (inherits the light)."""
    light = re.search(r"^:root\s*\{(.*?)^\}", css, re.S | re.M)
    dark = re.search(r"prefers-color-scheme:\s*dark\)\s*\{\s*:root\s*\{(.*?)\}", css, re.S)
    assert light, "app.css no longer has a light :root"
    assert dark, "app.css no longer has a dark :root"
    variables = {
        name: dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", block.group(1)))
        for name, block in (("light", light), ("dark", dark))
    }
    return {"light": variables["light"], "dark": {**variables["light"], **variables["dark"]}}


def relative_luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    lighter, darker = sorted((relative_luminance(one), relative_luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_contrast_formula_gives_the_known_ratios():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#f59e0b", "#ffffff") < NON_TEXT_CONTRAST  # the old amber ring


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_focus_ring_stands_out_from_every_background_it_is_drawn_on(scheme):
    colours = colour_schemes((STATIC_DIR / "app.css").read_text())[scheme]
    assert "outline: 3px solid var(--focus)" in (STATIC_DIR / "app.css").read_text()
    ratios = {bg: contrast(colours["--focus"], colours[bg]) for bg in FOCUS_RING_BACKGROUNDS}
    assert all(ratio >= NON_TEXT_CONTRAST for ratio in ratios.values()), ratios
