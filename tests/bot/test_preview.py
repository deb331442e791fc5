"""The message preview: a valid PNG of the asked width, growing with the content, never crashing or
warning on hostile text, and nothing drawn past the right edge."""

from __future__ import annotations

import io
import json
import struct
import threading
import warnings

import numpy as np
import pandas as pd
from PIL import Image

from bot.blocks import digest_message
from bot.digest import build
from bot.preview import MAX_HEIGHT, mrkdwn, preview_png
from bot.settings import Scope

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    assert png[:8] == SIGNATURE
    length, kind, width, height = struct.unpack(">I4sII", png[8:24])
    assert kind == b"IHDR" and length == 13
    return width, height


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(label: str, style: str | None = None) -> dict:
    button = {"type": "button", "text": {"type": "plain_text", "text": label}, "value": "v"}
    return {**button, "style": style} if style else button


EVERY_BLOCK = [
    {"type": "header", "text": {"type": "plain_text", "text": "Pipeline &amp; risk 🚀 " * 8}},
    {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*Field {i}*\n{i * 1000:,} 🚀"} for i in range(5)],
    },  # fmt: skip
    _section(
        "*&lt;!channel&gt;* pings nobody · `&lt;@U1&gt;` · _it&amp;co_ 👍🏽 ✅ 👨‍👩‍👧 ▲ ▼ $5 to $10"
    ),
    {
        **_section("<https://example.com|a link> and <@U123> and <!here> and <#C1|general>"),
        "accessory": _button("Open in CRM"),
    },  # fmt: skip
    {**_section("x"), "accessory": {"type": "image", "image_url": "https://x", "alt_text": "a"}},
    {**_section("x"), "accessory": {"type": "overflow", "options": []}},
    {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": "model confidence: *high*"},
            {"type": "image", "image_url": "https://x", "alt_text": "i"},
            {"type": "plain_text", "text": "as of 2017-12-31 🗓"},
        ],
    },  # fmt: skip
    {"type": "divider"},
    {
        "type": "actions",
        "elements": [
            _button("Why?"),
            _button("Snooze 7 days", "danger"),
            _button("Acknowledge", "primary"),
            _button("W" * 200),
            {"type": "static_select", "placeholder": {"type": "plain_text", "text": "Pick one"}},
        ],
    },  # fmt: skip
    {
        "type": "image",
        "image_url": "https://x",
        "alt_text": "fan chart " * 40,
        "title": {"type": "plain_text", "text": "Forecast"},
    },  # fmt: skip
    {"type": "rich_text", "elements": []},
    {"type": "section"},
    {"type": "context", "elements": []},
    _section("```\ncode block\n  indented\n```\ttab\x00nul\r\n" + "long words " * 450),
    _section("W" * 3000),
    _section("🚀" * 500),
    {"type": "header", "text": {"type": "plain_text", "text": "A" * 5000}},
]


def test_a_valid_png_of_the_asked_width():
    for width in (760, 333, 240, 1001):
        png = preview_png({"text": "hi", "blocks": [_section("*hello*")]}, width_px=width)
        assert _size(png)[0] == width
        assert Image.open(io.BytesIO(png)).size == _size(png)


def test_height_grows_with_the_blocks():
    heights = [
        _size(preview_png({"text": "t", "blocks": [_section(f"deal {i}") for i in range(n)]}))[1]
        for n in (1, 2, 5, 20)
    ]
    assert heights == sorted(heights) and len(set(heights)) == 4


def test_every_block_type_and_hostile_text_render_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for message in (
            {"text": "fallback", "blocks": EVERY_BLOCK},
            {"text": "only a fallback &lt;!channel&gt; 🚀", "blocks": []},
            {"text": "", "blocks": []},
            {},
            {"text": "t", "blocks": ["not a block", {"no": "type"}]},
        ):
            png = preview_png(message, width_px=500)
            assert _size(png)[0] == 500


def test_nothing_runs_off_the_right_edge():
    png = preview_png({"text": "t", "blocks": EVERY_BLOCK}, width_px=600)
    image = Image.open(io.BytesIO(png)).convert("L")
    strip = image.crop((image.width - 8, 0, image.width, image.height))
    assert strip.getextrema() == (255, 255)  # the right margin stays white


def test_a_huge_message_is_cut_not_rendered_endlessly():
    blocks = [{"type": "section", "fields": [{"type": "mrkdwn", "text": "word " * 400}] * 10}] * 50
    assert _size(preview_png({"text": "t", "blocks": blocks}))[1] <= MAX_HEIGHT + 50


def test_mrkdwn_shows_what_a_user_sees():
    runs = mrkdwn("*a* _b_ `c` <https://x|y> <@U1> &lt;!channel&gt; &amp;lt; snake_case_name")
    assert "".join(text for text, _, _ in runs) == "a b c y @U1 <!channel> &lt; snake_case_name"
    fonts = {text: font for text, font, _ in runs}
    assert (fonts["a"], fonts["b"], fonts["c"]) == ("bold", "italic", "mono")


def test_renders_are_the_same_from_threads():
    message = {"text": "t", "blocks": EVERY_BLOCK[:10]}
    expected = preview_png(message)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(preview_png(message)))
               for _ in range(4)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_the_digest_renders():
    drivers = json.dumps([{"key": "activity", "text": "no activity for 23 days", "points": -12.0,
                           "risk": 26.6, "money": 1282},
                          {"key": "rep", "text": "rep's win rate 70%", "points": 4.0, "risk": -2.2,
                           "money": -106}])  # fmt: skip
    n = 4
    scores = pd.DataFrame(
        {
            "rank": range(1, n + 1),
            "deal_id": [f"D{i}" for i in range(n)],
            "account": ["Acme", "<!channel>", None, "R&D <b>"],
            "product": ["GTX Pro"] * n,
            "owner": ["Ann Lee"] * n,
            "value": [4821.0, 12000.0, 800.0, 1e6],
            "win_prob": [0.21, 0.4, 0.1, 0.35],
            "risk": [75.0, 70.0, 80.0, 62.0],
            "drivers": [drivers] * n,
            "actions": [json.dumps(["call the champion"])] * n,
            "expected_close": ["2018-01-15"] * n,
        }
    )
    run = {"as_of": "2017-12-31", "run_id": 1, "confidence": "model confidence: high",
           "deals": n, "pipeline_value": 1.0e6, "expected_value": 3.5e5}  # fmt: skip
    digest = build(run=run, scores=scores, scope=Scope("all"), top=10, min_risk=60,
                   marks=pd.DataFrame(), previous=scores.assign(risk=50.0),
                   closed=pd.DataFrame({"deal_id": [], "status": []}))  # fmt: skip
    message = digest_message(digest)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = preview_png(message)
    width, height = _size(png)
    assert width == 760 and height > 400


def test_an_uploaded_chart_is_drawn_in_its_image_block_and_keeps_its_shape():
    chart = Image.new("RGB", (400, 200), (200, 30, 30))
    buf = io.BytesIO()
    chart.save(buf, format="PNG")
    block = {"type": "image", "image_url": "chart", "alt_text": "the chart"}
    message = {"text": "t", "blocks": [_section("*Forecast*"), block]}
    drawn = Image.open(io.BytesIO(preview_png(message, 600, images={"chart": buf.getvalue()})))
    placeholder = Image.open(io.BytesIO(preview_png(message, 600)))

    def red(image) -> int:
        rgb = np.asarray(image.convert("RGB")).astype(int)
        return int(((rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)).sum())

    assert red(drawn) >= 0.9 * 400 * 200  # the chart, at its own size (it fits the width)
    assert red(placeholder) == 0
    assert drawn.size[0] == 600 and drawn.size[1] >= 200
