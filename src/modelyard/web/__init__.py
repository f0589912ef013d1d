"""Server-rendered web pages (Jinja2 templates, SVG charts, a little vanilla JS)."""

from modelyard.web.pages import WebPages

__all__ = ["WebPages"]
