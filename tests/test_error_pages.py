"""Every refusal is the tool's own page, in the visitor's language, and shows inside the frame it was opened in:
Flask's own refusals (404, 405, 500), an expired launch token, an expired waiting-list offer."""

from __future__ import annotations

import re

from .conftest import error_code, main_attrs


def frame_ancestors(response) -> str:
    policy = response.headers["Content-Security-Policy"]
    return re.search(r"frame-ancestors ([^;]+)", policy).group(1)


def test_get_on_the_launch_address_is_the_tools_page_in_the_visitors_language(client):
    response = client.get("/lti/launch", headers={"Accept-Language": "nb-NO,nb;q=0.9"})
    body = response.get_data(as_text=True)
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"
    assert 'lang="nb"' in body and "Method Not Allowed" not in body


def test_an_unknown_address_is_the_tools_page(client):
    response = client.get("/no/such/page", headers={"Accept-Language": "sv"})
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert 'lang="sv"' in response.get_data(as_text=True)
    assert frame_ancestors(response) == "*"  # whatever frame it was opened in: never "refused to connect"


def test_a_failing_view_is_the_tools_page_with_500(app_factory, config):
    app = app_factory({**config, "PROPAGATE_EXCEPTIONS": False})

    @app.route("/boom")
    def boom():
        raise RuntimeError("a bug")

    response = app.test_client().get("/boom", headers={"Accept-Language": "en"})
    assert response.status_code == 500 and error_code(response) == "error"
    assert "a bug" not in response.get_data(as_text=True)


def test_a_bad_launch_token_is_a_page_any_frame_may_show(client, launches):
    response = client.get("/home?lt=not-a-token")
    assert response.status_code == 401 and error_code(response) == "launch_expired"
    assert frame_ancestors(response) == "*"


def test_an_expired_launch_token_is_framed_by_its_platform_and_worded_in_the_launchs_language(
        app, client, launches, monkeypatch):
    from lti_tool.config import settings

    spec = launches.spec("SE-1490", user="p1", locale="nn-NO")
    home = launches.launch(spec).headers["Location"]
    token = re.search(r"lt=([^&]+)", home).group(1)
    monkeypatch.setitem(app.config, "LAUNCH_TOKEN_TTL_SECONDS", -1)  # every token is now past its lifetime
    assert settings(app).launch_token_ttl_seconds == -1
    response = client.get(f"/home?lt={token}", headers={"Accept-Language": "en"})
    assert response.status_code == 401 and error_code(response) == "launch_expired"
    assert 'lang="nn"' in response.get_data(as_text=True)
    origins = frame_ancestors(response).split()
    assert "'self'" in origins and "http://localhost" in origins and "*" not in origins
    assert main_attrs(response)["error-code"] == "launch_expired"


def test_an_expired_waiting_list_offer_is_refused_inside_the_platforms_frame(app, client, demo, monkeypatch):
    from lti_tool.web import launch_token

    with app.test_request_context():
        offer = launch_token.issue_waitlist_token(demo, "p1", 1, "sv-SE")
    monkeypatch.setattr(launch_token, "WAITLIST_OFFER_SECONDS", -1)
    response = client.post("/waitlist", data={"wt": offer}, headers={"Accept-Language": "en"})
    assert response.status_code == 400 and error_code(response) == "waitlist_expired"
    assert 'lang="sv"' in response.get_data(as_text=True)
    assert "http://localhost" in frame_ancestors(response).split()


def test_a_refusal_has_details_for_the_platforms_administrator(client):
    page = client.get("/lti/launch", headers={"X-Request-ID": "req-4711-abc"})
    body = page.get_data(as_text=True)
    assert page.status_code == 405 and "<details class=\"support\">" in body
    assert "req-4711-abc" in body
    refused = client.get("/teach/pupil/F64551").get_data(as_text=True)
    assert "GET /teach/pupil/&lt;label&gt;" in refused or "/teach/pupil/<label>" in refused
    assert "F64551" not in refused  # the route's pattern, never the path: it may name a pupil


def test_a_form_sent_after_the_launch_token_expired_is_the_expired_page_not_a_forgery(app, client, launches,
                                                                                      monkeypatch):
    """A pupil who presses "Hand in" on a page left open since the morning: the refusal says the session ended
    (framed by the platform, nothing handed in), not that the form was forged; a token the tool never signed is
    still refused as a forgery."""
    spec = launches.spec("SE-1490", user="p1")
    token = re.search(r"lt=([^&]+)", launches.launch(spec).headers["Location"]).group(1)
    monkeypatch.setitem(app.config, "LAUNCH_TOKEN_TTL_SECONDS", -1)
    late = client.post(f"/withdraw?lt={token}", data={"round": "now", "confirm": "yes"})
    assert (late.status_code, error_code(late)) == (401, "launch_expired")
    assert "http://localhost" in frame_ancestors(late).split()
    forged = client.post("/withdraw?lt=not-a-token", data={"round": "now", "confirm": "yes"})
    assert (forged.status_code, error_code(forged)) == (400, "csrf_invalid")
