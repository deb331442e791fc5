"""A Slack message (chat.postMessage `text` + `blocks`) drawn as a PNG, roughly as Slack shows it.

For people without Slack (`revbot digest` writes digest.png beside digest.json) and the README.
Bytes out, no pyplot and no global state: a `Figure` on an Agg canvas is safe off the main thread.
Layout is in pixels (one axes unit a pixel, y down), then drawn. Text is measured by the bundled
DejaVu fonts' hinted glyph advances, as Agg draws them, so lines wrap before the right edge; the
characters those fonts lack (most emoji) become "•", so matplotlib never warns of missing glyphs.
"""

from __future__ import annotations

import io
import math
import re
from functools import cache, lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.backends.backend_agg import FigureCanvasAgg, get_hinting_flag  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties, get_font  # noqa: E402
from matplotlib.image import imread  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

_TTF = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONTS = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf",
         "italic": "DejaVuSans-Oblique.ttf", "bolditalic": "DejaVuSans-BoldOblique.ttf",
         "mono": "DejaVuSansMono.ttf"}  # fmt: skip
INK, GREY, LINK, CODE, RULE = "#1d1c1d", "#616061", "#1264a3", "#e01e5a", "#dddddd"
BUTTONS = {"primary": ("#007a5a", "#007a5a", "white"), "danger": ("#e01e5a", "#e01e5a", "white")}
PLAIN_BUTTON = ("white", "#bbbbbb", INK)
LEFT, RIGHT, GAP = 68, 20, 8  # content column (Slack's avatar gutter), right margin, block gap
MAX_HEIGHT = 8000  # px; a Block Kit maximum (50 sections of 3000 characters) is cut here
DROP = {0xFE0F, 0x200D, *range(0x1F3FB, 0x1F400)}  # emoji joiners, selectors, skin tones

Run = tuple[str, str, str]  # text, font key, colour
Op = tuple  # ("text", x, y, s, font, size, colour) | ("box", x, y, w, h, face, edge, radius)

_TOKEN = re.compile(
    r"```(?P<pre>.+?)```|`(?P<code>[^`\n]+)`|<(?P<link>[^<>\n]+)>"
    r"|(?<![\w*])\*(?P<bold>[^*\n]+?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<italic>[^_\n]+?)_(?![\w_])"
    r"|(?<![\w~])~(?P<strike>[^~\n]+?)~(?![\w~])",
    re.DOTALL,
)


@cache
def _charmap(font: str) -> frozenset[int]:
    return frozenset(get_font(str(_TTF / FONTS[font])).get_charmap())


@lru_cache(maxsize=65536)
def _advance(font: str, size: float, ch: str) -> float:
    """A glyph's hinted advance in pixels, as Agg will draw it (get_font is cached per thread)."""
    ft = get_font(str(_TTF / FONTS[font]))
    ft.set_size(size, 72)  # at 72 dpi a point is a pixel
    return ft.load_char(ord(ch), flags=get_hinting_flag()).horiAdvance / 64


def _width(text: str, font: str, size: float) -> float:
    return sum(_advance(font, size, ch) for ch in text)


def _clean(text: str, font: str) -> str:
    """What the font can draw: missing glyphs become "•", control characters spaces."""
    known = _charmap(font)
    out = []
    for ch in text:
        code = ord(ch)
        if code in DROP:
            continue
        out.append("    " if ch == "\t" else " " if code < 32 else ch if code in known else "•")
    return "".join(out)


def _unescape(text: str) -> str:
    return re.sub(r"&(lt|gt|amp);", lambda m: {"lt": "<", "gt": ">", "amp": "&"}[m[1]], text)


def _label(link: str) -> str:
    """What Slack shows for <url|label>, <@U1>, <#C1|name>, <!here>."""
    target, _, label = link.partition("|")
    if target[:1] in ("@", "#"):
        return target[0] + (label.lstrip("@#") or target[1:])
    if target.startswith("!"):
        return label or "@" + target[1:].split("^")[0]
    return label or target


def _font(bold: bool, italic: bool) -> str:
    return ("bold" if bold else "") + ("italic" if italic else "") or "regular"


def mrkdwn(text: str, color: str = INK, bold: bool = False, italic: bool = False) -> list[Run]:
    """Slack mrkdwn as styled runs: *bold*, _italic_, `code`, links and mentions, entities."""
    runs: list[Run] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            runs.append((_unescape(text[pos : m.start()]), _font(bold, italic), color))
        kind, inner = m.lastgroup or "", m[m.lastgroup or 0]
        if kind in ("pre", "code"):
            runs.append((_unescape(inner.strip("\n")), "mono", INK if kind == "pre" else CODE))
        elif kind == "link":
            runs.append((_unescape(_label(inner)), _font(bold, italic), LINK))
        else:
            runs += mrkdwn(inner, color, bold or kind == "bold", italic or kind == "italic")
        pos = m.end()
    if pos < len(text):
        runs.append((_unescape(text[pos:]), _font(bold, italic), color))
    return runs


def _runs(obj: object, color: str = INK, bold: bool = False) -> list[Run]:
    """A text object's runs: mrkdwn parsed, plain_text shown as is (entities decoded)."""
    if not isinstance(obj, dict):
        return []
    if obj.get("type") == "mrkdwn":
        return mrkdwn(str(obj.get("text", "")), color, bold)
    return [(_unescape(str(obj.get("text", ""))), _font(bold, False), color)]


def _wrap(runs: list[Run], size: float, width: float) -> list[list[tuple[float, str, str, str]]]:
    """Runs broken into lines of (x, text, font, colour) no wider than `width`."""
    lines: list[list[tuple[float, str, str, str]]] = [[]]
    x = 0.0

    def put(word: str, font: str, color: str) -> None:
        line = lines[-1]
        if line and line[-1][2:] == (font, color):  # pieces of a line are always adjacent
            line[-1] = (line[-1][0], line[-1][1] + word, font, color)
        else:
            line.append((x, word, font, color))

    for text, font, color in runs:
        for i, part in enumerate(text.split("\n")):
            if i:
                lines.append([])
                x = 0.0
            for word in re.findall(r"\s+|\S+", _clean(part, font)):
                w = _width(word, font, size)
                if x + w > width and x > 0:
                    lines.append([])
                    x = 0.0
                    if word.isspace():
                        continue
                while w > width:  # a word longer than the line: break it anywhere
                    n = 1
                    while n < len(word) and _width(word[: n + 1], font, size) <= width:
                        n += 1
                    put(word[:n], font, color)
                    lines.append([])
                    x, word = 0.0, word[n:]
                    w = _width(word, font, size)
                put(word, font, color)
                x += w
    return lines


def _text(ops: list[Op], runs: list[Run], x: float, y: float, width: float, size: float = 15,
          line: float | None = None) -> float:  # fmt: skip
    """Draw wrapped runs with their first line's top at y; returns the y below the last line."""
    line = line or round(size * 1.45)
    for row in _wrap(runs, size, width):
        baseline = y + (line - size) / 2 + 0.8 * size
        ops += [("text", x + dx, baseline, s, f, size, c) for dx, s, f, c in row if s.strip()]
        y += line
    return y


def _fit(element: dict, room: float) -> tuple[str, float]:
    """An element's label, cut with "…" to fit `room`, and its button's width."""
    chosen = (element.get("initial_option") or {}).get("text")
    text = (element.get("text") or chosen or element.get("placeholder") or {}).get("text")
    label = _clean(_unescape(str(text or element.get("type", "?"))), "bold")
    if element.get("type", "").endswith("select"):  # a menu, as Slack marks it
        label += " ▾"
    while len(label) > 1 and _width(label, "bold", 13) + 24 > room:
        label = label[:-2] + "…"
    return label, _width(label, "bold", 13) + 24


def _button(ops: list[Op], element: dict, x: float, y: float, room: float) -> float:
    """A button (or any other interactive element) as a rounded box; returns its width."""
    face, edge, ink = BUTTONS.get(element.get("style", ""), PLAIN_BUTTON)
    label, w = _fit(element, room)
    ops.append(("box", x, y, w, 28, face, edge, 4))
    ops.append(("text", x + 12, y + 19, label, "bold", 13, ink))
    return w


def _block(ops: list[Op], block: dict, y: float, width: float,
           images: dict[str, bytes] | None = None) -> float:  # fmt: skip
    """Lay out one block at y; returns the y below it. An image block whose `image_url` is in
    `images` is drawn from those PNG bytes (a chart uploaded with the message), else as a
    placeholder with its alt text."""
    kind = block.get("type")
    if kind == "header":
        return _text(ops, _runs(block.get("text"), bold=True), LEFT, y, width, 18, 26)
    if kind == "section":
        accessory = block.get("accessory") or {}
        side = 72 if accessory.get("type") == "image" else _fit(accessory, width / 3)[1]
        room = width - (side + 12 if accessory else 0)
        bottom = _text(ops, _runs(block.get("text")), LEFT, y, room) if block.get("text") else y
        fields = block.get("fields") or []
        col = (room - 16) / 2
        for i in range(0, len(fields), 2):
            top = bottom + (4 if i or block.get("text") else 0)
            pair = enumerate(fields[i : i + 2])
            bottom = max(_text(ops, _runs(f), LEFT + j * (col + 16), top, col) for j, f in pair)
        if accessory.get("type") == "image":
            ops.append(("box", LEFT + width - 72, y, 72, 72, "#e8e8e8", "#e8e8e8", 4))
            bottom = max(bottom, y + 72)
        elif accessory:
            _button(ops, accessory, LEFT + room + 12, y, side)
            bottom = max(bottom, y + 28)
        return bottom
    if kind == "context":
        runs: list[Run] = []
        for el in block.get("elements") or []:
            if el.get("type") in ("mrkdwn", "plain_text"):
                runs += ([("  ", "regular", GREY)] if runs else []) + _runs(el, GREY)
        return _text(ops, runs, LEFT, y, width, 12, 18)
    if kind == "divider":
        ops.append(("box", LEFT, y + 4, width, 1, RULE, RULE, 0))
        return y + 9
    if kind == "actions":
        x, bottom = LEFT, y + 28
        for el in block.get("elements") or []:
            if x > LEFT and x + _fit(el, width)[1] > LEFT + width:
                x, y, bottom = LEFT, y + 36, y + 64
            x += _button(ops, el, x, y, LEFT + width - x) + 8
        return bottom
    if kind == "image":
        if block.get("title"):
            y = _text(ops, _runs(block["title"], GREY), LEFT, y, width, 13, 20)
        png = (images or {}).get(block.get("image_url", ""))
        if png is not None:
            pixels = imread(io.BytesIO(png), format="png")
            w = min(width, float(pixels.shape[1]))
            h = w * pixels.shape[0] / pixels.shape[1]
            ops.append(("box", LEFT - 1, y - 1, w + 2, h + 2, "white", RULE, 4))
            ops.append(("image", LEFT, y, w, h, pixels))
            return y + h
        w = min(width, 360.0)
        alt = [(f"[image: {block.get('alt_text', '')}]", "italic", GREY)]
        h = max(_text(ops, alt, LEFT + 12, y + 12, w - 24, 13, 20) + 12 - y, 180)
        ops.append(("box", LEFT, y, w, h, "#e8e8e8", "#d0d0d0", 6))  # text draws above patches
        return y + h
    return _text(ops, [(f"[{kind} block]", "regular", GREY)], LEFT, y, width, 12, 18)


def _layout(message: dict, width_px: int, images: dict[str, bytes] | None = None) -> tuple[list[Op], float]:  # fmt: skip
    """All drawing operations in pixels (y down) and the height they need."""
    ops: list[Op] = [("box", 20, 10, 36, 36, "#08519c", "#08519c", 6),
                     ("text", LEFT, 24, "revbot", "bold", 15, INK)]  # fmt: skip
    x = LEFT + _width("revbot", "bold", 15) + 6
    ops += [("box", x, 12, 30, 15, "#e8e8e8", "#e8e8e8", 2), ("text", x + 4, 23, "APP", "bold", 9, GREY),
            ("text", x + 38, 24, "9:00 AM", "regular", 12, GREY)]  # fmt: skip
    width = width_px - LEFT - RIGHT
    fallback = {"type": "section", "text": {"type": "mrkdwn", "text": message.get("text") or ""}}
    y = 38.0
    for block in message.get("blocks") or [fallback]:  # Slack shows `text` when no blocks
        if y > MAX_HEIGHT:
            break
        y = _block(ops, block if isinstance(block, dict) else {"type": "?"}, y, width, images) + GAP
    if y > MAX_HEIGHT:
        ops = [op for op in ops if op[2] < MAX_HEIGHT - 30]
        cut = [("… preview cut here; the message is longer", "italic", GREY)]
        y = _text(ops, cut, LEFT, MAX_HEIGHT - 30, width, 12)
    return ops, max(y + 12, 58)


def preview_png(message: dict, width_px: int = 760, images: dict[str, bytes] | None = None) -> bytes:  # fmt: skip
    """The message as Slack would roughly show it, `width_px` wide; height follows the content.
    `images`: PNG bytes of the image blocks' `image_url`s (a file uploaded with the message)."""
    if width_px < 240:
        raise ValueError(f"width_px {width_px}: too narrow for Slack's layout (240 at least)")
    ops, height = _layout(message, width_px, images)
    height = math.ceil(height)
    fig = Figure(figsize=(1, (height + 0.5) / width_px), dpi=width_px, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width_px)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    px = 72 / width_px  # points per pixel at this dpi
    for op in ops:
        if op[0] == "image":
            _, x, y, w, h, pixels = op
            ax.imshow(pixels, extent=(x, x + w, y + h, y), interpolation="antialiased",
                      aspect="auto", zorder=3)  # fmt: skip
        elif op[0] == "text":
            _, x, y, s, font, size, color = op
            prop = FontProperties(fname=_TTF / FONTS[font], size=size * px)
            ax.text(x, y, s, fontproperties=prop, color=color, va="baseline", ha="left",
                    parse_math=False, usetex=False)  # fmt: skip
        else:
            _, x, y, w, h, face, edge, radius = op
            style = f"round,pad=0,rounding_size={radius}" if radius else "square,pad=0"
            ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, facecolor=face,
                                        edgecolor=edge, linewidth=px))  # fmt: skip
    ax.set_xlim(0, width_px)  # an image would otherwise widen the axes to its own extent
    ax.set_ylim(height, 0)
    buf = io.BytesIO()
    canvas.print_png(buf)  # not savefig: no rcParams (savefig.bbox, dpi) can change the size
    return buf.getvalue()
