"""The self-contained HTML report helper and the probe report files."""

from __future__ import annotations

import base64
import re

from chorus.report import figure_png, heading, image, page, paragraph, table


def test_table_escapes_text_and_formats_numbers():
    html = table(["name", "score"], [["<b>&", 0.12345], ["nan", float("nan")]], caption="x<y")
    assert "&lt;b&gt;&amp;" in html and "0.123" in html and "–" in html and "<caption>x&lt;y</caption>" in html


def test_page_embeds_figures_and_style():
    from matplotlib.figure import Figure

    figure = Figure()
    figure.subplots().plot([0, 1], [1, 0])
    png = figure_png(figure)
    assert png.startswith(b"\x89PNG") and png == figure_png(figure)
    document = page("T & t", [heading("h"), paragraph("p", note=True), image(png, "alt")])
    assert document.startswith("<!DOCTYPE html>") and "<style>" in document and "<title>T &amp; t</title>" in document
    encoded = re.search(r'src="data:image/png;base64,([^"]+)"', document).group(1)
    assert base64.b64decode(encoded) == png
    assert "http" not in document  # nothing to fetch
