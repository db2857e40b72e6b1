"""Lesson and assignment Markdown to HTML: markdown-it, then the nh3 allow-list.
No script, event handler, ``javascript:`` URL or iframe ever reaches a page."""

from __future__ import annotations

from typing import Mapping

import nh3
from markdown_it import MarkdownIt

TAGS = {"p", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "a", "blockquote", "code", "pre",
        "br", "hr", "table", "thead", "tbody", "tr", "th", "td"}
ATTRIBUTES = {"a": {"href", "title"}, "th": {"scope"}, "ol": {"start"}}
SCHEMES = {"http", "https", "mailto"}

# Raw HTML is parsed so that the allow-list removes it (rather than showing it as escaped text).
_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")


def render_markdown(text: str) -> str:
    html = _markdown.render(text or "")
    # A lesson's own headings sit under the page's h1: shift a Markdown "# x" down to h2.
    html = html.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=SCHEMES, link_rel="noopener noreferrer",
                     clean_content_tags={"script", "style", "iframe", "object", "embed", "template"})


def render_local(texts: Mapping[str, str]) -> dict[str, str]:
    """Every language of a LocalText, rendered."""
    return {lang: render_markdown(value) for lang, value in texts.items()}
