"""Interface languages: Swedish, Norwegian bokmål and nynorsk, English.

The locale of a page comes from the launch (``launch_presentation.locale``, else the OpenID ``locale``
claim), then the browser's Accept-Language, then ``DEFAULT_LOCALE``.
"""

from __future__ import annotations

from pathlib import Path

from datetime import datetime

from babel import dates, numbers
from flask import Flask, g, request
from flask_babel import Babel, to_user_timezone

from .config import settings
from .domain.claims import SUPPORTED_LOCALES, normalise_locale

LANGUAGE_NAMES = {"sv": "Svenska", "nb": "Norsk bokmål", "nn": "Norsk nynorsk", "en": "English"}


def set_locale(value: str | None) -> None:
    """Use this locale for the rest of the request, when it is one we have."""
    locale = normalise_locale(value)
    if locale:
        g.locale = locale


def select_locale() -> str:
    chosen = g.get("locale")
    if chosen:
        return chosen
    if request:
        for tag, _quality in request.accept_languages:
            locale = normalise_locale(tag)
            if locale:
                return locale
    return settings().default_locale


def formatting_locale() -> str:
    """The locale dates and numbers are written in: the page's, with English in its British form ("7 Dec 2026",
    the day first), as English is read in Sweden and Norway."""
    locale = select_locale()
    return "en_GB" if locale == "en" else locale


def format_date(value, format: str = "medium") -> str:
    """A date (or the day of a moment, in the user's time zone) in the page's language."""
    if isinstance(value, datetime):
        value = to_user_timezone(value)
    return dates.format_date(value, format, locale=formatting_locale())


def format_day(value) -> str:
    """A day and month without the year, in the page's language: "14 februari", "14. februar", "14 February"."""
    if isinstance(value, datetime):
        value = to_user_timezone(value)
    return dates.format_skeleton("MMMMd", value, locale=formatting_locale())


def format_decimal(number, format: str | None = None) -> str:
    return numbers.format_decimal(number, format=format, locale=formatting_locale())


def format_currency(number, currency: str, format: str | None = None) -> str:
    return numbers.format_currency(number, currency, format=format, locale=formatting_locale())


def swedish_genitive(name: str) -> str:
    """A Swedish name in the genitive: "Kirunas", "Umeås"; a name ending in s, x or z takes nothing ("Borås",
    "Lax")."""
    name = name.strip()
    return name if not name or name[-1].lower() in "sxz" else name + "s"


def owner_name(name: str) -> str:
    """A municipality's name as it stands before what it owns in the page's language: Swedish puts the owner
    first, in the genitive ("Kirunas utbud"); English, bokmål and nynorsk name it after a preposition ("the offer
    of Kiruna", "tilbudet til Bergen"), where it stays as it is."""
    return swedish_genitive(name) if select_locale() == "sv" else name


def init_app(app: Flask) -> None:
    translations = Path(__file__).parent / "translations"
    Babel(app, locale_selector=select_locale, default_translation_directories=str(translations))

    @app.context_processor
    def _languages():
        return {"supported_locales": SUPPORTED_LOCALES, "language_names": LANGUAGE_NAMES,
                "current_locale": select_locale(), "format_date": format_date, "format_day": format_day,
                "format_decimal": format_decimal,
                "format_currency": format_currency, "owner_name": owner_name}
