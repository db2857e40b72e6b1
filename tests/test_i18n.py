"""Every string shown to a person is translated into sv, nb and nn; the compiled catalogs are current."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "lti_tool" / "translations"
METHODS = [("lti_tool/**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}


def key(value):
    return value if isinstance(value, str) else tuple(value)


def extracted() -> set[str]:
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), METHODS, keywords=KEYWORDS):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


@pytest.mark.parametrize("locale", ["sv", "nb", "nn"])
def test_every_message_is_translated_and_compiled(locale):
    folder = TRANSLATIONS / locale / "LC_MESSAGES"
    with open(folder / "messages.po", "rb") as handle:
        po = {key(m.id): key(m.string) for m in read_po(handle, locale=locale) if m.id}
    with open(folder / "messages.mo", "rb") as handle:
        mo = {key(m.id): key(m.string) for m in read_mo(handle) if m.id}
    singular = {(k if isinstance(k, str) else k[0]): v for k, v in po.items()}
    wanted = extracted()
    assert wanted, "no messages extracted"
    missing = sorted(m for m in wanted if not singular.get(m) or not all(singular[m]))
    assert not missing, f"{locale}: untranslated {missing}"
    assert mo == po, f"{locale}: messages.mo is older than messages.po (run pybabel compile -d lti_tool/translations)"


def test_pages_switch_language(client):
    assert "Sidan finns inte" in client.get("/nope", headers={"Accept-Language": "sv-SE"}).get_data(as_text=True)
    assert "Siden finnes ikke" in client.get("/nope", headers={"Accept-Language": "nb"}).get_data(as_text=True)
    assert "Sida finst ikkje" in client.get("/nope", headers={"Accept-Language": "nn-NO"}).get_data(as_text=True)
    page = client.get("/nope", headers={"Accept-Language": "en-GB"})
    assert page.status_code == 404 and "The page was not found" in page.get_data(as_text=True)
    assert 'lang="sv"' in client.get("/nope", headers={"Accept-Language": "de"}).get_data(as_text=True)


@pytest.mark.parametrize("name, genitive", [("Kiruna", "Kirunas"), ("Umeå", "Umeås"), ("Borås", "Borås"),
                                            ("Lax", "Lax"), ("Åre", "Åres")])
def test_swedish_genitive(name, genitive):
    from lti_tool.i18n import swedish_genitive

    assert swedish_genitive(name) == genitive


def test_the_offer_is_the_municipalitys_in_swedish(launches):
    def page(spec) -> str:
        answer = launches.launch(spec)
        return launches.client.get(answer.headers["Location"]).get_data(as_text=True)

    assert "Kirunas utbud" in page(launches.spec("SE-2584", locale="sv-SE"))
    page = page(launches.spec("SE-1490", locale="sv-SE", user="pupil-boras"))
    assert "Borås utbud" in page and "Boråss" not in page


def test_english_dates_are_british(app):
    from datetime import date

    from lti_tool.i18n import format_date, set_locale

    with app.test_request_context():
        set_locale("en-GB")
        assert format_date(date(2027, 3, 4), "medium") == "4 Mar 2027"
        assert format_date(date(2027, 3, 4), "long") == "4 March 2027"
    with app.test_request_context():
        set_locale("sv-SE")
        assert format_date(date(2027, 3, 4), "long") == "4 mars 2027"
