"""Self-contained reports: HTML tables, figures embedded as base64 PNG, one file to share."""

from .html import figure_png, heading, image, page, paragraph, table, write_page

__all__ = ["figure_png", "heading", "image", "page", "paragraph", "table", "write_page"]
