"""Catalog texts (LocalText: {"sv": ..., "nb": ..., "en": ...}) in the reader's language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

# The reader's language first; when the feed lacks it, Swedish, then bokmål, then English (FEED.md: every
# text has sv or nb). Nynorsk readers get bokmål before Swedish: they read it as their own.
FALLBACK = {"sv": ("sv", "nb", "en", "nn"), "nb": ("nb", "sv", "en", "nn"), "nn": ("nn", "nb", "sv", "en"),
            "en": ("en", "sv", "nb", "nn")}


@dataclass(frozen=True)
class Localised:
    text: str
    lang: str  # the language the text is actually in: a page marks it with lang="..." when it differs

    def __str__(self) -> str:
        return self.text


def pick_text(value: Mapping[str, str] | None, locale: str) -> Localised:
    if not value:
        return Localised("", locale)
    for lang in FALLBACK.get(locale, FALLBACK["sv"]):
        text = value.get(lang)
        if text:
            return Localised(text, lang)
    lang, text = next(iter(value.items()))
    return Localised(text, lang)
