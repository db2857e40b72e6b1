"""The staff console's catalog (courses, a course's rounds and its content as pupils see it, with the fallback
languages marked), its orders (filters, pages, each round's places against the seats ordered), and the audit log
(details, the viewer's time zone, changes made on the command line, each CLI change audited)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from html import unescape

from sqlalchemy import select, update

from lti_tool.db import new_session
from lti_tool.models import (AuditEntry, Course, CourseModule, CourseRound, Deployment, Lesson, LtiContext,
                             Municipality, OutboxItem, Registration)
from lti_tool.services import seats

from .catalog_factory import add_content, add_course
from .test_staff import sign_in


def page_text(response) -> str:
    assert response.status_code == 200, response.status_code
    return unescape(response.get_data(as_text=True))


def nav_current(html: str) -> list[str]:
    nav = html.split('<nav class="console-nav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'<a href="([^"]+)" aria-current="(?:page|true)"', nav)


# -- the catalog ---------------------------------------------------------------------------------------------

def test_catalog_lists_courses_with_prices_in_the_page_language_and_searches(app, client, demo):
    with new_session(app) as session:
        add_course(session)
        add_course(session, "PIA-JAZZ-2", status="retired", rounds=[{"round_id": "2026-autumn"}],
                   prices=(("SE", "2450.5", "SEK"),))
        session.get(Course, "PIA-JAZZ-2").title = {"sv": "Jazzpiano för fortsättare", "nb": "Jazzpiano videregående"}
        session.commit()
    sign_in(client)
    html = page_text(client.get("/staff/catalog", headers={"Accept-Language": "sv"}))
    assert 'data-courses-total="2"' in html
    assert '<tr data-course="GIT-AK-1" data-status="active">' in html
    row = html.split('data-course="GIT-AK-1"', 1)[1].split("</tr>", 1)[0]
    assert "Kurs GIT-AK-1" in row and "music" in row
    assert "SE 1\xa0900,00\xa0kr" in row and "NO 2\xa0100,00\xa0Nkr" in row  # Swedish format: Nkr for NOK
    assert re.search(r'data-label="[^"]*">2</td>', row)  # two rounds
    retired = html.split('data-course="PIA-JAZZ-2"', 1)[1].split("</tr>", 1)[0]
    assert 'data-status="retired"' in html and "2\xa0450,50\xa0kr" in retired
    # In bokmål the titles and the amounts follow the page.
    norwegian = page_text(client.get("/staff/catalog", headers={"Accept-Language": "nb"}))
    assert "Jazzpiano videregående" in norwegian and "Kurs GIT-AK-1 (nb)" in norwegian
    # The search: code, subject or a title in any language, case and accents ignored.
    found = page_text(client.get("/staff/catalog?q=fortsattare"))
    assert 'data-courses-total="1"' in found and 'data-course="PIA-JAZZ-2"' in found
    assert 'data-course="GIT-AK-1"' not in found
    assert 'data-courses-total="1"' in page_text(client.get("/staff/catalog?q=git-ak"))
    assert 'data-courses-total="0"' in page_text(client.get("/staff/catalog?q=tuba"))
    assert nav_current(html) == ["/staff/catalog"]


def _multilingual_course(app) -> None:
    with new_session(app) as session:
        add_course(session, rounds=[{"round_id": "now", "capacity": 10, "min_participants": 4},
                                    {"round_id": "later", "closes_in": 200, "capacity": 30}])
        add_content(session)
        course = session.get(Course, "GIT-AK-1")
        course.languages = ["sv", "nb", "nn"]
        module = session.scalar(select(CourseModule).where(CourseModule.key == "GIT-AK-1-m1"))
        module.title = {"sv": "Modul 1", "nb": "Modul 1 på bokmål", "nn": "Modul 1 på nynorsk"}
        lesson = session.scalar(select(Lesson).where(Lesson.key == "GIT-AK-1-m2-l1"))
        lesson.title = {"sv": "Lektion 2.1", "nb": "Leksjon 2.1"}
        lesson.body_html = {"sv": "<p>Öva <strong>lugnt</strong>.</p>", "nb": "<p>Øv <em>rolig</em>.</p>"}
        # A lesson gone from the feed is not shown.
        session.add(Lesson(module_id=module.id, key="gone", position=9, title={"sv": "Borttagen lektion"},
                           body_markdown={"sv": "x"}, body_html={"sv": "<p>x</p>"}, current=False))
        session.commit()


def test_course_page_shows_rounds_with_national_totals_and_warns_when_orders_exceed_places(app, client, demo):
    _multilingual_course(app)
    with new_session(app) as session:
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 8)
        seats.set_order(session, "NO-0301", "GIT-AK-1", "now", 5)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "later", 3)
        session.execute(update(CourseRound).where(CourseRound.round_id == "now").values(seats_taken=2))
        session.commit()
    sign_in(client)
    html = page_text(client.get("/staff/catalog/courses/GIT-AK-1", headers={"Accept-Language": "en"}))
    now = html.split('data-round="now"', 1)[1].split("</tr>", 1)[0]
    assert 'data-capacity="10" data-budget="13" data-taken="2"' in now and 'data-over="3"' in now
    later = html.split('data-round="later"', 1)[1].split("</tr>", 1)[0]
    assert 'data-budget="3"' in later and "data-over" not in later
    # The warning above the rounds names the round and how many seats too many were ordered.
    assert 'data-over-capacity="1"' in html and "Orders exceed places." in html
    assert "Round now: 13 seats ordered for 10 places (3 too many)." in html
    assert "SEK1,900.00" in html and "NOK2,100.00" in html  # the price in the page's format (British English)
    # The link to the round's orders.
    assert "/staff/orders?course=GIT-AK-1&round=now" in html
    assert nav_current(html) == ["/staff/catalog"]  # the course page belongs to the catalog
    assert client.get("/staff/catalog/courses/NOPE").status_code == 404


def test_course_content_as_pupils_see_it_in_each_language_with_fallbacks_marked(app, client, demo):
    _multilingual_course(app)
    sign_in(client)
    swedish = page_text(client.get("/staff/catalog/courses/GIT-AK-1?lang=sv", headers={"Accept-Language": "en"}))
    preview = swedish.split('class="course-preview"', 1)[1]
    assert 'data-reader="sv"' in swedish
    # The lesson body is the stored, sanitised HTML the pupil's page shows (not escaped, not re-rendered).
    assert "<p>Öva <strong>lugnt</strong>.</p>" in preview
    assert "Borttagen lektion" not in preview  # gone from the feed
    assert "data-fallback" not in preview  # everything exists in Swedish
    # The switch names the course's languages; the one shown is current.
    switch = swedish.split('class="pager language-switch"', 1)[1].split("</nav>", 1)[0]
    assert [lang for lang in re.findall(r'hreflang="(\w+)"', switch)] == ["sv", "nb", "nn"]
    assert 'lang="sv" hreflang="sv" aria-current="page"' in switch

    nynorsk = page_text(client.get("/staff/catalog/courses/GIT-AK-1?lang=nn", headers={"Accept-Language": "en"}))
    preview = nynorsk.split('class="course-preview"', 1)[1]
    assert 'data-reader="nn"' in nynorsk
    assert '<h3 id="module-' in preview and 'lang="nn">Modul 1 på nynorsk</h3>' in preview  # the module has nynorsk
    # Nynorsk missing: bokmål shown (as a nynorsk pupil gets it), marked visibly and with its lang.
    assert re.search(r'<span lang="nb">Leksjon 2\.1 <span class="badge fallback-mark" lang="en" '
                     r'data-fallback="nb">shown in bokmål</span></span>', preview)
    assert '<div class="prose" lang="nb"><p>Øv <em>rolig</em>.</p></div>' in preview
    # A text with neither nynorsk nor bokmål: Swedish, marked so.
    assert 'data-fallback="sv">shown in Swedish</span>' in preview
    # The assignment of module 2 has sv and nb titles: bokmål for a nynorsk reader.
    assert "Oppgave 2" in preview
    # A language the course does not have falls back to the page's or the course's first.
    assert 'data-reader="sv"' in page_text(client.get("/staff/catalog/courses/GIT-AK-1?lang=xx",
                                                      headers={"Accept-Language": "en"}))
    assert 'data-reader="nb"' in page_text(client.get("/staff/catalog/courses/GIT-AK-1",
                                                      headers={"Accept-Language": "nb"}))


def test_pupil_pages_keep_their_catalog_texts_unmarked(app, client, demo):
    """The shared macro adds the visible fallback mark only when asked (titles in lists stay unmarked; the pupil's
    lesson and assignment bodies ask for it, tests/test_delivery.py)."""
    from flask import render_template_string

    from lti_tool.domain.texts import pick_text

    with app.test_request_context(headers={"Accept-Language": "nn"}):
        html = render_template_string('{% import "_macros.html" as m with context %}{{ m.loc(v) }}|{{ m.rich(h) }}',
                                      v={"nb": "Leksjon"}, h={"nb": "<p>Øv</p>"},
                                      text=lambda value: pick_text(value, "nn"))
    assert html == '<span lang="nb">Leksjon</span>|<div class="prose" lang="nb"><p>Øv</p></div>'


# -- orders ----------------------------------------------------------------------------------------------------

def _many_orders(app, municipalities: int, *, country: str = "SE") -> None:
    with new_session(app) as session:
        add_course(session, rounds=[{"round_id": "now", "capacity": 100}, {"round_id": "later", "closes_in": 200}])
        add_course(session, "PIA-1", rounds=[{"round_id": "now", "capacity": 500}])
        for n in range(municipalities):
            code = f"{9000 + n:04d}"
            session.add(Municipality(id=f"{country}-{code}", country=country, code=code, name=f"Testkommun {n:03d}"))
        session.flush()
        for n in range(municipalities):
            seats.set_order(session, f"{country}-{9000 + n:04d}", "GIT-AK-1", "now", 2)
            seats.set_order(session, f"{country}-{9000 + n:04d}", "PIA-1", "now", 1)
        session.commit()


def test_orders_are_paged_fifty_at_a_time_with_filters(app, client, demo):
    _many_orders(app, 40)
    with new_session(app) as session:
        seats.set_order(session, "NO-0301", "GIT-AK-1", "now", 7)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "later", 4)
        session.commit()
    sign_in(client)
    html = page_text(client.get("/staff/orders"))
    assert 'data-orders-total="82" data-page="1" data-pages="2"' in html
    assert html.count("<tr data-order=") == 50
    second = page_text(client.get("/staff/orders?page=2"))
    assert second.count("<tr data-order=") == 32 and 'data-page="2"' in second
    assert re.search(r'aria-current="page"><span class="visually-hidden">[^<]+</span>2</a>', second)
    # Filters: course, round, municipality (name or code, case and accents ignored), country; kept by the pager.
    course = page_text(client.get("/staff/orders?course=PIA-1"))
    assert 'data-orders-total="40"' in course and "GIT-AK-1</span></td>" not in course
    assert 'data-orders-total="1"' in page_text(client.get("/staff/orders?course=GIT-AK-1&round=later"))
    assert 'data-orders-total="41"' in page_text(client.get("/staff/orders?round=now&course=GIT-AK-1"))
    norway = page_text(client.get("/staff/orders?country=NO"))
    assert 'data-orders-total="1"' in norway and 'data-municipality="NO-0301"' in norway
    assert 'data-orders-total="2"' in page_text(client.get("/staff/orders?municipality=TESTKOMMUN+007"))
    assert 'data-orders-total="1"' in page_text(client.get("/staff/orders?municipality=boras"))  # Borås
    assert 'data-orders-total="2"' in page_text(client.get("/staff/orders?municipality=se-9001"))
    assert "No order matches the filter." in page_text(client.get("/staff/orders?municipality=nowhere",
                                                                  headers={"Accept-Language": "en"}))
    filtered = page_text(client.get("/staff/orders?round=now"))
    assert 'data-orders-total="81" data-page="1" data-pages="2"' in filtered
    assert "/staff/orders?page=2&round=now" in filtered
    assert nav_current(html) == ["/staff/orders"]


def test_order_totals_per_round_warn_when_budgets_exceed_national_places(app, client, demo):
    _many_orders(app, 60)  # 60 × 2 seats of GIT-AK-1 "now", capacity 100: 20 over; PIA-1 60 of 500
    with new_session(app) as session:
        session.execute(update(CourseRound).where(CourseRound.course_code == "GIT-AK-1",
                                                  CourseRound.round_id == "now").values(seats_taken=37))
        seats.set_order(session, "NO-0301", "GIT-AK-1", "now", 5)
        session.commit()
    sign_in(client)
    html = page_text(client.get("/staff/orders", headers={"Accept-Language": "sv"}))
    totals = html.split("data-round-totals", 1)[1].split("</table>", 1)[0]
    git = totals.split('data-round-total="GIT-AK-1/now"', 1)[1].split("</tr>", 1)[0]
    assert 'data-capacity="100" data-budget="125" data-taken="37"' in git and 'data-over="25"' in git
    pia = totals.split('data-round-total="PIA-1/now"', 1)[1].split("</tr>", 1)[0]
    assert 'data-budget="60"' in pia and "data-over" not in pia
    assert 'data-over-capacity="1"' in html
    # The totals are national whatever municipality or country the orders are filtered to.
    norway = page_text(client.get("/staff/orders?country=NO"))
    assert 'data-round-total="GIT-AK-1/now" data-capacity="100" data-budget="125"' in norway
    assert 'data-round-total="PIA-1/now"' not in norway  # no Norwegian order of it
    # Amounts and counts in the page's format: committed budget × price, and the cost so far.
    oslo = page_text(client.get("/staff/orders?municipality=oslo", headers={"Accept-Language": "nb"}))
    row = oslo.split('data-municipality="NO-0301"', 1)[1].split("</tr>", 1)[0]
    assert "10\xa0500,00\xa0kr" in row  # 5 × 2 100 NOK committed
    assert "0,00\xa0kr" in row  # no seat taken yet
    assert 'data-over-capacity="1"' in oslo


def test_orders_at_national_scale(app, client, demo):
    """647 municipalities with two orders each: the page shows 50 and counts them all."""
    _many_orders(app, 647)
    sign_in(client)
    html = page_text(client.get("/staff/orders?page=26"))
    assert 'data-orders-total="1294" data-page="26" data-pages="26"' in html
    assert html.count("<tr data-order=") == 44
    assert 'data-round-total="GIT-AK-1/now" data-capacity="100" data-budget="1294"' in html \
        and 'data-over="1194"' in html


# -- the audit log ---------------------------------------------------------------------------------------------

def test_audit_log_shows_details_origin_and_times_in_the_viewers_zone(app, client, demo):
    with new_session(app) as session:
        session.add_all([
            AuditEntry(at=datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc), actor="cli ops", action="deployment.bind",
                       target="deployment 7", details={"registration": 3, "before": ["SE-1490"],
                                                       "after": ["SE-1440", "SE-1490"], "added": ["SE-1440"],
                                                       "removed": [], "status": {"before": "pending",
                                                                                 "after": "active"},
                                                       "custom_param": {"before": None,
                                                                        "after": "municipality_code"}}),
            AuditEntry(at=datetime(2026, 12, 1, 23, 30, tzinfo=timezone.utc), actor="nora@kulturskola.example",
                       action="registration.replace", target="registration 3",
                       details={"before": {"jwks_url": "https://old.example/jwks", "product": "Canvas"},
                                "after": {"jwks_url": "https://new.example/jwks", "product": "Canvas"}}),
            AuditEntry(at=datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc), actor="SE-1490 administrator 1A2B3C",
                       action="order.set", target="GIT-AK-1 now", details={"seats": 4}),
        ])
        session.commit()
    sign_in(client)
    html = page_text(client.get("/staff/audit", headers={"Accept-Language": "en"}))
    assert 'data-time-zone="Europe/Stockholm"' in html and "Europe/Stockholm" in html
    # Summer time in Stockholm: 10:00 UTC is 12:00; 23:30 UTC on 1 December is already 2 December there.
    assert '<time datetime="2026-07-01T10:00:00+00:00" class="code">1 Jul 2026, 12:00:00</time>' in html
    assert "2 Dec 2026, 00:30:00" in html
    bind = html.split('data-action="deployment.bind"', 1)[1].split("</li>\n", 1)[0]
    assert 'data-origin="cli"' in html.split('data-action="deployment.bind"', 1)[1][:30]
    assert "Command line</span> ops:" in bind
    assert '<dd data-detail="status"><span class="before">pending</span> → <span class="after">active</span>' in bind
    assert '<span class="before">–</span> → <span class="after">municipality_code</span>' in bind
    assert "<li>SE-1440</li><li>SE-1490</li>" in bind and "Added" in bind
    replace = html.split('data-action="registration.replace"', 1)[1].split("</li>\n", 1)[0]
    assert "Staff console" in replace
    assert "<del>https://old.example/jwks</del> → <ins>https://new.example/jwks</ins>" in replace
    assert "product</span>: Canvas</li>" in replace
    assert "Municipal console" in html.split('data-action="order.set"', 1)[1].split("</li>\n", 1)[0]
    # Only the command line's changes.
    cli = page_text(client.get("/staff/audit?show=cli"))
    assert 'data-entries="1"' in cli and 'data-action="deployment.bind"' in cli
    assert 'href="/staff/audit?show=cli" aria-current="page"' in cli
    # A Norwegian reader gets Oslo's zone, and says so.
    norwegian = page_text(client.get("/staff/audit", headers={"Accept-Language": "nb"}))
    assert 'data-time-zone="Europe/Oslo"' in norwegian
    assert nav_current(html) == ["/staff/audit"]


def test_audit_log_is_paged(app, client, demo):
    with new_session(app) as session:
        session.add_all([AuditEntry(actor="cli ops", action="order.set", target=f"x {n}", details={})
                         for n in range(120)])
        session.commit()
    sign_in(client)
    first = page_text(client.get("/staff/audit", headers={"Accept-Language": "en"}))
    assert 'data-entries="50"' in first and "120 entries." in first
    assert 'data-entries="20"' in page_text(client.get("/staff/audit?page=3"))


# -- every change on the command line is audited ---------------------------------------------------------------

def invoke(runner, *args):
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def entries(app, action: str) -> list[AuditEntry]:
    with new_session(app) as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_platform_and_deployment_changes_on_the_command_line_are_audited(app, runner, demo, client):
    registration_id = int(invoke(runner, "platforms", "add", "--name", "Region Moodle", "--issuer",
                                 "https://moodle.region.example", "--client-id", "abc", "--auth-login-url",
                                 "https://moodle.region.example/auth", "--auth-token-url",
                                 "https://moodle.region.example/token", "--jwks-url",
                                 "https://moodle.region.example/jwks", "--by", "ops").strip())
    [added] = entries(app, "registration.add")
    assert added.actor == "cli ops" and added.target == f"registration {registration_id}"
    assert added.details["issuer"] == "https://moodle.region.example" and added.details["client_id"] == "abc"
    assert added.details["values"]["jwks_url"] == "https://moodle.region.example/jwks"

    common = ["--issuer", "https://moodle.region.example", "--client-id", "abc", "--deployment-id", "1"]
    invoke(runner, "platforms", "add-deployment", *common, "--municipality", "SE-1490", "--by", "ops")
    invoke(runner, "platforms", "add-deployment", *common, "--municipality", "SE-1440", "--municipality", "SE-1490",
           "--custom-param", "municipality_code")
    first, second = entries(app, "deployment.bind")
    assert first.actor == "cli ops" and first.target == "deployment 1"
    assert first.details["before"] == [] and first.details["added"] == ["SE-1490"]
    assert first.details["status"] == {"before": None, "after": "active"}
    assert second.actor.startswith("cli ")  # the operating-system user without --by
    assert second.details["before"] == ["SE-1490"] and second.details["after"] == ["SE-1440", "SE-1490"]
    assert second.details["added"] == ["SE-1440"] and second.details["removed"] == []
    assert second.details["custom_param"] == {"before": None, "after": "municipality_code"}

    invoke(runner, "platforms", "deactivate-deployment", *common, "--by", "ops")
    [off] = entries(app, "deployment.deactivate")
    assert off.actor == "cli ops" and off.details["status"] == {"before": "active", "after": "inactive"}
    assert off.details["municipalities"] == ["SE-1440", "SE-1490"]

    invoke(runner, "platforms", "remove", str(registration_id), "--by", "ops")
    [removed] = entries(app, "registration.remove")
    assert removed.details["municipalities"] == {"1": ["SE-1440", "SE-1490"]}
    assert removed.details["values"]["deployments"] == ["1"]
    with new_session(app) as session:
        assert session.get(Registration, registration_id) is None
        assert session.scalar(select(Deployment).where(Deployment.registration_id == registration_id)) is None

    # The console shows them with their origin.
    sign_in(client)
    html = page_text(client.get("/staff/audit?show=cli", headers={"Accept-Language": "en"}))
    assert html.count('data-origin="cli"') == 5 and "Command line</span> ops:" in html


def test_orders_contacts_municipalities_and_outbox_on_the_command_line_are_audited(app, runner, demo, tmp_path):
    with new_session(app) as session:
        add_course(session)
        session.commit()
    invoke(runner, "orders", "set", "--municipality", "SE-1490", "--course", "GIT-AK-1", "--round", "now",
           "--seats", "5", "--by", "ops")
    invoke(runner, "orders", "set", "--municipality", "SE-1490", "--course", "GIT-AK-1", "--round", "now",
           "--seats", "8", "--by", "ops")
    created, raised = entries(app, "order.set")
    assert created.actor == "cli ops" and created.target == "GIT-AK-1 now" and created.details["municipality"] == \
        "SE-1490"
    assert created.details["seats_budget"] == {"before": None, "after": 5}
    assert raised.details["seats_budget"] == {"before": 5, "after": 8}

    with new_session(app) as session:
        registration = session.scalars(select(Registration)).first()
        issuer, client_id = registration.issuer, registration.client_id
    invoke(runner, "municipalities", "add-contact", "--municipality", "SE-1490", "--issuer", issuer, "--client-id",
           client_id, "--sub", "rektor-9", "--by", "ops")
    [contact] = entries(app, "municipal_contact.add")
    assert contact.actor == "cli ops" and contact.details["sub"] == "rektor-9"

    listing = tmp_path / "se.csv"
    listing.write_text("municipality_code,municipality_name,municipality_name_short,county_code\n"
                       "9999,Provs kommun,Prov,99\n", "utf-8")
    invoke(runner, "municipalities", "import", "--country", "SE", str(listing), "--by", "ops")
    [imported] = entries(app, "municipalities.import")
    assert imported.actor == "cli ops" and imported.details["added"] == ["SE-9999"]
    # Importing the same list again changes nothing and writes nothing.
    invoke(runner, "municipalities", "import", "--country", "SE", str(listing))
    assert len(entries(app, "municipalities.import")) == 1

    with new_session(app) as session:
        made = add_content(session)
        context = LtiContext(registration_id=registration.id, context_id="ctx-1", course_code="GIT-AK-1")
        session.add(context)
        session.flush()
        session.add(OutboxItem(kind="score", registration_id=registration.id, context_pk=context.id,
                               assignment_id=made["assignment1"], sub="p1", dedupe_key="k1", payload={},
                               status="dead"))
        session.commit()
        dead = session.scalar(select(OutboxItem.id))
    invoke(runner, "outbox", "retry", str(dead), "--by", "ops")
    [retry] = entries(app, "outbox.retry")
    assert retry.actor == "cli ops" and retry.target == f"outbox {dead}" and retry.details["queued"] == 1


def test_changes_already_audited_on_the_command_line_keep_the_cli_actor(app, runner, demo):
    """Round teachers, the providing school, invitations and the digest address: audited by their services with the
    command line's actor."""
    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 3)
        session.commit()
    invoke(runner, "rounds", "teachers", "add", "--course", "GIT-AK-1", "--round", "now", "--email",
           "sara@kulturskola.example", "--name", "Sara", "--by", "ops")
    invoke(runner, "rounds", "school", "--course", "GIT-AK-1", "--school", "Borås kulturskola", "--by", "ops")
    invoke(runner, "invitations", "issue", "--municipality", "SE-1490", "--course", "GIT-AK-1", "--round", "now",
           "--count", "1", "--by", "ops")
    invoke(runner, "municipalities", "digest-email", "--municipality", "SE-1490", "--email",
           "kulturskola@boras.example", "--by", "ops")
    with new_session(app) as session:
        actors = {e.action: e.actor for e in session.scalars(select(AuditEntry))}
    assert len(actors) >= 4 and set(actors.values()) == {"cli ops"}, actors


def test_amounts_use_the_shared_locale_helpers(app):
    """The console formats with lti_tool.i18n's helpers: the same digits as the municipal console."""
    from lti_tool.i18n import format_currency, format_decimal

    with app.test_request_context(headers={"Accept-Language": "sv"}):
        assert format_currency(Decimal("1900"), "SEK") == "1\xa0900,00\xa0kr"
        assert format_decimal(1294) == "1\xa0294"


def test_catalog_sync_key_rotation_and_closing_enrolment_on_the_command_line_are_audited(app, runner, demo):
    from datetime import timedelta
    from pathlib import Path

    feed = Path(__file__).parent / "data" / "catalog" / "feed-small.json"
    invoke(runner, "catalog", "sync", "--source", str(feed), "--dry-run", "--by", "ops")
    assert entries(app, "catalog.sync") == []  # a dry run changes nothing
    invoke(runner, "catalog", "sync", "--source", str(feed), "--by", "ops")
    [synced] = entries(app, "catalog.sync")
    assert synced.actor == "cli ops" and synced.target == str(feed) and synced.details["result"] == "applied"

    output = invoke(runner, "keys", "rotate", "--by", "ops")
    [rotated] = entries(app, "keys.rotate")
    assert rotated.actor == "cli ops" and rotated.target.split()[1] in output

    with new_session(app) as session:
        add_course(session, "CLOSE-1", rounds=[{"round_id": "past", "closes_in": -3, "min_participants": 0}])
        session.commit()
        closes = session.scalar(select(CourseRound.enrolment_closes_on).where(CourseRound.course_code == "CLOSE-1"))
    today = (closes + timedelta(days=1)).isoformat()
    invoke(runner, "rounds", "close-enrolment", "--today", today, "--by", "cron")
    [closed] = entries(app, "rounds.close_enrolment")
    assert closed.actor == "cli cron" and "CLOSE-1 past" in closed.details["running"]
    invoke(runner, "rounds", "close-enrolment", "--today", today, "--by", "cron")
    assert len(entries(app, "rounds.close_enrolment")) == 1  # nothing left to close: nothing written


def test_identity_providers_registrations_teachers_and_invitations_on_the_command_line_are_audited(app, runner, demo):
    provider = invoke(runner, "identity-providers", "add", "--profile", "feide", "--name", "Feide", "--country", "NO",
                      "--client-id", "feide-client", "--client-secret", "s3cret", "--by", "ops").strip()
    invoke(runner, "identity-providers", "disable", provider, "--by", "ops")
    invoke(runner, "identity-providers", "enable", provider, "--by", "ops")
    invoke(runner, "identity-providers", "remove", provider, "--yes", "--by", "ops")

    with new_session(app) as session:
        add_course(session)
        seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 3)
        pending = [Registration(name=f"Moodle {n}", issuer=f"https://moodle{n}.example", client_id="m",
                                auth_login_url="https://m.example/auth", auth_token_url="https://m.example/token",
                                jwks_url="https://m.example/jwks", status="pending") for n in (1, 2)]
        session.add_all(pending)
        session.commit()
        first, second = (r.id for r in pending)
    invoke(runner, "platforms", "approve", str(first), "--by", "ops")
    invoke(runner, "platforms", "reject", str(second), "--by", "ops")

    invoke(runner, "rounds", "teachers", "invite", "--course", "GIT-AK-1", "--round", "now", "--name", "Sara",
           "--by", "ops")
    listing = invoke(runner, "rounds", "teachers", "list", "--course", "GIT-AK-1", "--round", "now")
    teacher_id = listing.split()[0]
    invoke(runner, "rounds", "teachers", "remove", teacher_id, "--by", "ops")

    invoke(runner, "invitations", "issue", "--municipality", "SE-1490", "--course", "GIT-AK-1", "--round", "now",
           "--count", "1", "--by", "ops")
    invitation_id = invoke(runner, "invitations", "list", "--municipality", "SE-1490").split()[0]
    invoke(runner, "invitations", "revoke", invitation_id, "--by", "ops")

    with new_session(app) as session:
        made = [(e.action, e.actor) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert [action for action, _actor in made] == [
        "identity_provider_add", "identity_provider_disabled", "identity_provider_active", "identity_provider_remove",
        "registration.approve", "registration.reject", "round_teacher_invite", "round_teacher_remove",
        "invitations.issue", "invitation.revoke"], made
    assert {actor for _action, actor in made} == {"cli ops"}
