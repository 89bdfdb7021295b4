"""Self-contained reports: HTML tables, figures embedded as base64 PNG, one file to share."""

from .figures import annotate_cells, outside_legend, pyplot
from .html import figure_png, folded, heading, image, page, paragraph, table, write_page

__all__ = ["annotate_cells", "figure_png", "folded", "heading", "image", "outside_legend", "page", "paragraph", "pyplot", "table", "write_page"]
