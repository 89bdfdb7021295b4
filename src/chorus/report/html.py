"""Building blocks of a one-file HTML report: everything (style, figures) is inline, so
the page can be mailed or archived alone."""

from __future__ import annotations

import base64
import html
import io
import math
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from ..fileio import write_text


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return html.escape("" if value is None else str(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None, digits: int = 3) -> str:
    """An HTML table; floats shown with ``digits`` decimals (NaN as a dash), text escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v, digits)}</td>" for v in row) + "</tr>" for row in rows)
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure_png(figure, dpi: int = 110) -> bytes:
    """PNG bytes of a matplotlib figure (no timestamp or software tag: same figure, same bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def image(png: bytes, alt: str) -> str:
    """An ``<img>`` holding ``png`` as a base64 data URI."""
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{encoded}">'


def folded(summary: str, parts: Sequence[str]) -> str:
    """``parts`` inside a ``<details>`` block, closed until the reader opens it (long tables)."""
    return f"<details><summary>{html.escape(summary)}</summary>\n" + "\n".join(parts) + "\n</details>"


def heading(text: str, level: int = 2) -> str:
    return f"<h{level}>{html.escape(text)}</h{level}>"


def paragraph(text: str, note: bool = False) -> str:
    """A paragraph; ``note`` renders it smaller and grey."""
    css = ' class="note"' if note else ""
    return f"<p{css}>{html.escape(text)}</p>"


def page(title: str, parts: Sequence[str]) -> str:
    """A complete HTML document with the house style inlined."""
    style = resources.files("chorus.report").joinpath("style.css").read_text(encoding="utf-8")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head>\n<body>\n{heading(title, 1)}\n{body}\n</body></html>\n")


def write_page(path: str | Path, title: str, parts: Sequence[str]) -> None:
    """Write :func:`page` atomically."""
    write_text(path, page(title, parts))
