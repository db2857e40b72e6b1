"""The staff console at national scale (issue 17): a deployment's municipalities are chosen with checkboxes
among all 647 (Sweden 290, Norway 357, imported from the official lists where they lie); additions apply at
once, a removal only after a confirmation page that lists it; an empty set is refused; deactivating asks first;
every change is audited with the values before and after; the registrations page searches and pages."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import select

from lti_tool.db import new_session
from lti_tool.models import AuditEntry, Deployment, DeploymentMunicipality, Municipality, Registration

from .test_staff import sign_in

# The official lists, read where they lie (never copied into the project): SCB's and SSB's CSV files, in the
# formats ``municipalities import`` takes.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SWEDEN = SHARED / "se" / "municipalities.csv"
NORWAY = SHARED / "no" / "kommuner-no-357.csv"

pytestmark = pytest.mark.skipif(not (SWEDEN.is_file() and NORWAY.is_file()),
                                reason=f"the official municipality lists are not at {SHARED}")


def import_official_lists(app) -> None:
    from catalog_sync.municipalities import import_municipalities

    with new_session(app) as session:
        assert len(import_municipalities(session, SWEDEN, "SE").added) == 290
        assert len(import_municipalities(session, NORWAY, "NO").added) == 357
        session.commit()


def add_registration(session, number: int, *, deployment_id: str, municipalities: list[str],
                     custom_param: str | None = None, status: str = "active") -> Deployment:
    registration = Registration(name=f"Region {number:02d} Canvas", issuer=f"https://lms{number:02d}.example",
                                client_id=f"client-{number:02d}", auth_login_url=f"https://lms{number:02d}.example/auth",
                                auth_token_url=f"https://lms{number:02d}.example/token",
                                jwks_url=f"https://lms{number:02d}.example/jwks")
    session.add(registration)
    session.flush()
    deployment = Deployment(registration_id=registration.id, deployment_id=deployment_id, status=status,
                            custom_param=custom_param,
                            municipalities=[DeploymentMunicipality(municipality_id=m) for m in municipalities])
    session.add(deployment)
    session.flush()
    return deployment


@pytest.fixture
def national(app, client):
    """All 647 municipalities; one registration whose deployment "region-1" serves Borås alone."""
    import_official_lists(app)
    with new_session(app) as session:
        deployment = add_registration(session, 1, deployment_id="region-1", municipalities=["SE-1490"])
        session.commit()
        pk = deployment.id
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return pk


def bound(app, pk: int) -> list[str]:
    with new_session(app) as session:
        return sorted(m.municipality_id for m in session.get(Deployment, pk).municipalities)


def status_of(app, pk: int) -> str:
    with new_session(app) as session:
        return session.get(Deployment, pk).status


def audit_entries(app, action: str) -> list[AuditEntry]:
    with new_session(app) as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def confirm_form(page) -> dict[str, list[str]]:
    """The hidden fields of the confirmation page's form: what pressing "Confirm" posts."""
    form = re.search(r'<form method="post"[^>]*class="confirm">(.*?)</form>', page.get_data(as_text=True), re.S)
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(1)):
        fields.setdefault(name, []).append(unescape(value))
    return fields


def test_the_official_lists_give_647_municipalities(app, national):
    with new_session(app) as session:
        countries = [m.country for m in session.scalars(select(Municipality))]
    assert (len(countries), countries.count("SE"), countries.count("NO")) == (647, 290, 357)


def test_the_binding_page_lists_every_municipality_as_a_checkbox_bound_ones_first(app, client, national):
    sign_in(client)
    page = client.get(f"/staff/deployments/{national}/municipalities")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-deployment="region-1"' in html
    boxes = re.findall(r'<input type="checkbox" name="municipality" value="([A-Z]{2}-\d{4})"( checked)?>', html)
    assert len(boxes) == 647 and len({m for m, _checked in boxes}) == 647
    assert boxes[0] == ("SE-1490", " checked") and [m for m, checked in boxes if checked] == ["SE-1490"]
    # Grouped by country and county (Swedish counties named from their code), in each country's order.
    assert html.index("<legend>Sweden</legend>") < html.index("<legend>Norway</legend>")
    assert "<legend>Västra Götalands län</legend>" in html and "<legend>Rogaland</legend>" in html
    stockholm = html.index("<legend>Stockholms län</legend>")
    assert html.index('value="SE-0114"') > stockholm  # Upplands Väsby, in its county
    # Swedish alphabetical order within a county: Å, Ä, Ö after Z (Örebro län: Askersund ... Örebro).
    assert html.index('value="SE-1882"') < html.index('value="SE-1880"')
    # The search field is there for the script (loaded with this response's nonce) and hidden without it.
    assert '<div class="picker-search" hidden>' in html
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}" src="/static/staff-municipalities.js" defer></script>' in html
    script = client.get("/static/staff-municipalities.js")
    assert script.status_code == 200 and "data-template" in script.get_data(as_text=True)
    script.close()
    assert len(page.get_data()) < 300_000


def test_adding_municipalities_applies_at_once_and_is_audited(app, client, national):
    token = sign_in(client)
    answer = client.post(f"/staff/deployments/{national}/bind", data={
        "csrf": token, "municipality": ["SE-1490", "SE-1440", "NO-0301"], "custom_param": "municipality_code"})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/staff/deployments/{national}/municipalities?saved=bound")
    assert bound(app, national) == ["NO-0301", "SE-1440", "SE-1490"]
    [entry] = audit_entries(app, "deployment.bind")
    assert entry.actor == "Nora Nationell (local)" and entry.target == "deployment region-1"
    assert entry.details["before"] == ["SE-1490"]
    assert entry.details["after"] == ["NO-0301", "SE-1440", "SE-1490"]
    assert entry.details["added"] == ["NO-0301", "SE-1440"] and entry.details["removed"] == []
    assert entry.details["status"] == {"before": "active", "after": "active"}
    assert entry.details["custom_param"] == {"before": None, "after": "municipality_code"}
    saved = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Saved." in saved and 'data-bound="3"' in saved
    audit = client.get("/staff/audit").get_data(as_text=True)
    assert '<dd data-detail="added"><ul class="names"><li>NO-0301</li><li>SE-1440</li></ul></dd>' in audit


def test_a_removal_shows_the_change_and_waits_for_confirmation(app, client, national):
    token = sign_in(client)
    assert client.post(f"/staff/deployments/{national}/bind", data={
        "csrf": token, "municipality": ["SE-1490", "SE-1440", "NO-0301"],
        "custom_param": "municipality_code"}).status_code == 303
    # Oslo unticked and Kiruna ticked, in one go: nothing changes, the change is shown.
    page = client.post(f"/staff/deployments/{national}/bind", data={
        "csrf": token, "municipality": ["SE-1490", "SE-1440", "SE-2584"], "custom_param": "municipality_code"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-confirm="binding"' in html
    assert 'data-added="1" data-removed="1"' in html
    assert 'data-removed-ids="NO-0301"' in html and 'data-added-ids="SE-2584"' in html
    assert "Oslo <span class=\"code\">NO-0301</span>" in html and "Kiruna <span class=\"code\">SE-2584</span>" in html
    assert "1 municipality removed" in html and "1 municipality added" in html
    assert "2 municipalities stay bound." in html
    assert f'href="/staff/deployments/{national}/municipalities">Cancel</a>' in html
    assert bound(app, national) == ["NO-0301", "SE-1440", "SE-1490"]
    assert len(audit_entries(app, "deployment.bind")) == 1

    fields = confirm_form(page)
    assert fields["confirm"] == ["yes"] and sorted(fields["municipality"]) == ["SE-1440", "SE-1490", "SE-2584"]
    # A confirmation shown against another set than the one bound now applies nothing: shown again.
    stale = client.post(f"/staff/deployments/{national}/bind", data={**fields, "seen": "SE-1490"})
    assert stale.status_code == 409 and "changed since this change was shown" in stale.get_data(as_text=True)
    assert bound(app, national) == ["NO-0301", "SE-1440", "SE-1490"]

    confirmed = client.post(f"/staff/deployments/{national}/bind", data=fields)
    assert confirmed.status_code == 303
    assert bound(app, national) == ["SE-1440", "SE-1490", "SE-2584"]
    entry = audit_entries(app, "deployment.bind")[-1]
    assert entry.details["before"] == ["NO-0301", "SE-1440", "SE-1490"]
    assert entry.details["after"] == ["SE-1440", "SE-1490", "SE-2584"]
    assert entry.details["added"] == ["SE-2584"] and entry.details["removed"] == ["NO-0301"]


def test_changing_the_custom_parameter_of_an_active_shared_deployment_asks_first(app, client, national):
    token = sign_in(client)
    chosen = ["SE-1490", "SE-1440"]
    assert client.post(f"/staff/deployments/{national}/bind", data={
        "csrf": token, "municipality": chosen, "custom_param": "municipality_code"}).status_code == 303
    page = client.post(f"/staff/deployments/{national}/bind",
                       data={"csrf": token, "municipality": chosen, "custom_param": "kommun"})
    assert page.status_code == 200 and 'data-added="0" data-removed="0"' in page.get_data(as_text=True)
    with new_session(app) as session:
        assert session.get(Deployment, national).custom_param == "municipality_code"
    assert client.post(f"/staff/deployments/{national}/bind", data=confirm_form(page)).status_code == 303
    with new_session(app) as session:
        assert session.get(Deployment, national).custom_param == "kommun"


def test_an_empty_set_is_refused_inline(app, client, national):
    token = sign_in(client)
    for data in ({"csrf": token}, {"csrf": token, "municipality": [], "confirm": "yes", "seen": "SE-1490"},
                 {"csrf": token, "municipality": ["  "]}):
        page = client.post(f"/staff/deployments/{national}/bind", data=data)
        html = page.get_data(as_text=True)
        assert page.status_code == 400 and 'data-error="1"' in html
        assert '<div class="notice error" role="alert" id="binding-error"><p>Choose at least one municipality' in html
        assert html.count('name="municipality"') == 647  # the form, shown again, nothing ticked
        assert 'checked' not in html
    assert bound(app, national) == ["SE-1490"] and status_of(app, national) == "active"
    assert audit_entries(app, "deployment.bind") == []


def test_other_refusals_are_inline_too(app, client, national):
    token = sign_in(client)
    several = client.post(f"/staff/deployments/{national}/bind",
                          data={"csrf": token, "municipality": ["SE-1490", "SE-1440"]})
    assert several.status_code == 400 and "give the custom parameter" in several.get_data(as_text=True)
    assert several.get_data(as_text=True).count(" checked>") == 2  # the choice is kept
    unknown = client.post(f"/staff/deployments/{national}/bind", data={"csrf": token, "municipality": ["SE-9999"]})
    assert unknown.status_code == 400 and "Unknown municipality: SE-9999." in unknown.get_data(as_text=True)
    assert bound(app, national) == ["SE-1490"]
    assert client.get("/staff/deployments/999999/municipalities").status_code == 404


def test_deactivating_asks_first_and_is_audited(app, client, national):
    token = sign_in(client)
    page = client.get(f"/staff/deployments/{national}/deactivate")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-confirm="deactivate"' in html
    assert "can no longer open the tool from this deployment" in html and "stay as they are" in html
    assert "Borås" in html
    assert client.post(f"/staff/deployments/{national}/deactivate", data={"csrf": token}).status_code == 200
    assert client.post(f"/staff/deployments/{national}/deactivate",
                       data={"csrf": token, "confirm": "no"}).status_code == 200
    assert status_of(app, national) == "active" and audit_entries(app, "deployment.deactivate") == []

    done = client.post(f"/staff/deployments/{national}/deactivate", data={"csrf": token, "confirm": "yes"})
    assert done.status_code == 303 and status_of(app, national) == "inactive"
    [entry] = audit_entries(app, "deployment.deactivate")
    assert entry.details["status"] == {"before": "active", "after": "inactive"}
    assert entry.details["municipalities"] == ["SE-1490"]
    assert bound(app, national) == ["SE-1490"]  # its municipalities stay
    again = client.post(f"/staff/deployments/{national}/deactivate", data={"csrf": token, "confirm": "yes"})
    assert again.status_code == 409 and len(audit_entries(app, "deployment.deactivate")) == 1

    # It is made active again by binding it (the same set: nothing removed, so at once).
    page = client.get(f"/staff/deployments/{national}/municipalities").get_data(as_text=True)
    assert "This deployment is deactivated" in page and ">Bind and approve</button>" in page
    assert client.post(f"/staff/deployments/{national}/bind",
                       data={"csrf": token, "municipality": ["SE-1490"]}).status_code == 303
    assert status_of(app, national) == "active"
    entry = audit_entries(app, "deployment.bind")[-1]
    assert entry.details["status"] == {"before": "inactive", "after": "active"} and entry.details["removed"] == []


def test_the_registrations_page_pages_searches_and_stays_small(app, client, national):
    with new_session(app) as session:
        ids = list(session.scalars(select(Municipality.id).order_by(Municipality.country.desc(), Municipality.id)))
        norway = [m for m in ids if m.startswith("NO-")]
        # 29 more registrations; one national deployment serves all of Norway, the others ~22 municipalities each.
        add_registration(session, 2, deployment_id="all-norway", municipalities=norway, custom_param="kommune")
        for number in range(3, 31):
            chunk = ids[(number - 3) * 22:(number - 2) * 22]
            add_registration(session, number, deployment_id=f"dep-{number:02d}", municipalities=chunk,
                             custom_param="municipality_code")
        session.commit()
    sign_in(client)
    first = client.get("/staff/registrations")
    html = first.get_data(as_text=True)
    assert first.status_code == 200 and len(first.get_data()) < 300_000
    assert 'data-registrations-total="30" data-page="1" data-pages="2"' in html
    assert html.count("<section class=\"module\"") == 25
    assert 'name="municipality"' not in html  # no binding form per deployment here
    assert html.count("<details") >= 25
    assert re.search(r"<summary>357 municipalities: [^<]+, …</summary>", html)
    assert 'href="/staff/registrations?page=1" aria-current="page"' in html
    assert 'href="/staff/registrations?page=2">' in html
    second = client.get("/staff/registrations?page=2").get_data(as_text=True)
    assert second.count("<section class=\"module\"") == 5
    assert 'href="/staff/registrations?page=2" aria-current="page"' in second
    assert 'data-page="2"' in client.get("/staff/registrations?page=99").get_data(as_text=True)
    assert 'data-page="1"' in client.get("/staff/registrations?page=x").get_data(as_text=True)

    def found(query: str) -> list[str]:
        page = client.get("/staff/registrations", query_string={"q": query}).get_data(as_text=True)
        return re.findall(r'<h2 id="reg-\d+">([^<]+)</h2>', page)

    assert found("Region 07") == ["Region 07 Canvas"]
    assert found("lms12.example") == ["Region 12 Canvas"]
    assert found("client-29") == ["Region 29 Canvas"]
    assert found("dep-05") == ["Region 05 Canvas"]
    assert found("all-norway") == ["Region 02 Canvas"]
    # By municipality, name or code, case and accents ignored: Borås is served by region-1 and one chunk.
    boras = found("Borås")
    assert "Region 01 Canvas" in boras and len(boras) == 2 and found("boras") == boras and found("se-1490") == boras
    oslo = f"Region {ids.index('NO-0301') // 22 + 3:02d} Canvas"  # the chunk holding Oslo
    assert found("Oslo") == ["Region 02 Canvas", oslo] and found("NO-0301") == found("oslo")
    assert found("no such thing") == []
    assert found("%") == [] and found("_") == []
    page = client.get("/staff/registrations", query_string={"q": "Oslo"}).get_data(as_text=True)
    assert "2 registrations match “Oslo”." in page
    assert "<details open>" in page  # the deployment serving the municipality searched for is unfolded
    with_query = client.get("/staff/registrations", query_string={"q": "Canvas"}).get_data(as_text=True)
    assert 'href="/staff/registrations?q=Canvas&amp;page=2">' in with_query
