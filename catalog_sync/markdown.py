"""Lesson and assignment Markdown to HTML: markdown-it-py (CommonMark, raw HTML off: it shows as text),
then the nh3 allow-list. No script, event handler, ``javascript:`` URL or iframe ever reaches a page."""

from __future__ import annotations

import re
from typing import Mapping

import nh3
from markdown_it import MarkdownIt

TAGS = {"p", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "a", "blockquote", "code", "pre",
        "br", "hr", "table", "thead", "tbody", "tr", "th", "td"}
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer"
# Never kept, not even their text (defence in depth: with raw HTML off, Markdown cannot make them anyway).
DROPPED_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript"}

# "html": False escapes raw HTML (``<script>`` is shown as text). markdown-it's own link check already
# refuses javascript:, vbscript:, file: and most data: URLs; nh3 then allows only URL_SCHEMES.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_ABSOLUTE = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    # nh3 lets relative URLs through; a feed's link is absolute (http, https or mailto) or it goes.
    if tag == "a" and attribute == "href" and not _ABSOLUTE.match(value.strip()):
        return None
    return value


def render_markdown(text: str) -> str:
    """One text of the feed, rendered and sanitised."""
    html = _markdown.render(text or "")
    # A lesson's own headings sit under the page's h1: a Markdown "# x" becomes an h2.
    html = html.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES, link_rel=LINK_REL,
                     clean_content_tags=DROPPED_WITH_CONTENT, strip_comments=True,
                     attribute_filter=_keep_attribute)


def render_local(texts: Mapping[str, str]) -> dict[str, str]:
    """Every language of a LocalText, rendered."""
    return {lang: render_markdown(value) for lang, value in texts.items()}


__all__ = ["render_local", "render_markdown"]
