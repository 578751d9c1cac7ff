"""Render a terminal capture (``tmux capture-pane -p -e``: text with ANSI colours) to a PNG.

    tmux capture-pane -p -e -t SESSION > screen.ans
    python docs/img/terminal_png.py screen.ans docs/img/live_tui.png

rich decodes the ANSI codes, its MONOKAI terminal theme gives the colours, PIL draws each
character in DejaVu Sans Mono (``fonts-dejavu-core``) on a fixed grid.
"""
from __future__ import annotations

import sys
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
FONT_PX = 16
PAD_PX = 12


def render(ansi: str, out: str | Path) -> Path:
    """Draw ``ansi`` (lines of text with SGR colour codes) into ``out`` (PNG)."""
    from PIL import Image, ImageDraw, ImageFont
    from rich.terminal_theme import MONOKAI
    from rich.text import Text

    lines = list(Text.from_ansi(ansi.rstrip("\n")).split("\n", allow_blank=True))  # SGR state crosses lines
    while lines and not lines[-1].plain.strip():
        lines.pop()
    regular, bold = ImageFont.truetype(FONT, FONT_PX), ImageFont.truetype(FONT_BOLD, FONT_PX)
    cell_w = round(regular.getlength("M"))
    cell_h = round(FONT_PX * 1.25)
    cols = max(len(t.plain.rstrip()) for t in lines)
    image = Image.new("RGB", (2 * PAD_PX + cols * cell_w, 2 * PAD_PX + len(lines) * cell_h),
                      tuple(MONOKAI.background_color))
    draw = ImageDraw.Draw(image)
    default_fg = tuple(MONOKAI.foreground_color)
    for row, text in enumerate(lines):
        styles = [None] * len(text.plain)
        for span in text.spans:
            for i in range(span.start, min(span.end, len(styles))):
                styles[i] = span.style
        for col, char in enumerate(text.plain):
            style = styles[col]
            fg, is_bold, dim = default_fg, False, False
            if style is not None and not isinstance(style, str):
                if style.color is not None and not style.color.is_default:
                    fg = tuple(style.color.get_truecolor(MONOKAI))
                is_bold, dim = bool(style.bold), bool(style.dim)
            if dim:
                fg = tuple(int(0.55 * c + 0.45 * b) for c, b in zip(fg, tuple(MONOKAI.background_color)))
            if char != " ":
                draw.text((PAD_PX + col * cell_w, PAD_PX + row * cell_h), char, fill=fg,
                          font=bold if is_bold else regular)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python docs/img/terminal_png.py CAPTURE.ans OUT.png")
    print(render(Path(sys.argv[1]).read_text(), sys.argv[2]))
