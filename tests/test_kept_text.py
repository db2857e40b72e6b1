"""A hand-in's text (or a message to the teacher) sent after the launch token expired: the "session ended" page
shows it back, and a signed, partitioned cookie limited to that assignment's page keeps it for the pupil's next
launch, until it is handed in (or sent)."""

from __future__ import annotations

import re
from html import unescape


from lti_tool.db import new_session

from .conftest import error_code, main_attrs

TEXT = "Jag övade skalan <varje> dag & spelade låten två gånger."


def _launch(launches, user: str) -> str:
    response = launches.launch(launches.spec("SE-1490", user=user, course="GIT-AK-1", locale="en-GB"))
    assert response.status_code == 303, response.get_data(as_text=True)
    return re.search(r"lt=([^&]+)", response.headers["Location"]).group(1)


def _field(response) -> str:
    match = re.search(r'<textarea id="text"[^>]*>(.*?)</textarea>', response.get_data(as_text=True), re.S)
    return unescape(match.group(1)) if match else ""


def test_a_text_sent_too_late_comes_back_after_the_next_launch_and_goes_once_handed_in(
        app, client, launches, content, monkeypatch):
    assignment = content["assignment2"]
    token = _launch(launches, "elev-sen")
    monkeypatch.setitem(app.config, "LAUNCH_TOKEN_TTL_SECONDS", -1)
    late = client.post(f"/assignment/{assignment}?lt={token}", data={"text": TEXT})
    body = late.get_data(as_text=True)
    assert late.status_code == 401 and error_code(late) == "launch_expired"
    assert "data-kept-text" in body and unescape(re.search(r'id="kept-text"[^>]*>(.*?)</textarea>', body,
                                                           re.S).group(1)) == TEXT
    cookie = late.headers["Set-Cookie"]
    assert cookie.startswith("kulturskola_kept_text=") and f"Path=/assignment/{assignment};" in cookie
    assert "Partitioned" in cookie and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=None" in cookie
    assert "elev-sen" not in cookie  # the pupil's draft key (a keyed hash), never the platform's user id
    with new_session(app) as session:  # nothing was handed in
        from lti_tool.models import Submission

        assert session.query(Submission).count() == 0

    # The course opened again from the platform: the text is back in the field, and the page says so.
    monkeypatch.setitem(app.config, "LAUNCH_TOKEN_TTL_SECONDS", 3600)
    token = _launch(launches, "elev-sen")
    page = client.get(f"/assignment/{assignment}?lt={token}")
    assert _field(page) == TEXT
    assert re.search(r"data-draft-restored>", page.get_data(as_text=True))  # shown, not hidden
    # Another pupil on the same device does not get it.
    other = _launch(launches, "elev-annan")
    assert _field(client.get(f"/assignment/{assignment}?lt={other}")) == ""
    # Handed in: the kept copy goes.
    handed = client.post(f"/assignment/{assignment}?lt={token}", data={"text": TEXT})
    assert handed.status_code == 303
    assert "kulturskola_kept_text=;" in handed.headers.get("Set-Cookie", "")
    page = client.get(f"/assignment/{assignment}?lt={token}")
    assert main_attrs(page)["hand-in"] == "submitted"
    assert not re.search(r"data-draft-restored>", page.get_data(as_text=True))


def test_a_late_post_without_text_or_with_a_forged_cookie_keeps_nothing(app, client, launches, content, monkeypatch):
    assignment = content["assignment2"]
    token = _launch(launches, "elev-tom")
    monkeypatch.setitem(app.config, "LAUNCH_TOKEN_TTL_SECONDS", -1)
    late = client.post(f"/assignment/{assignment}?lt={token}", data={"text": "  "})
    assert late.status_code == 401 and "Set-Cookie" not in late.headers
    assert "data-kept-text" not in late.get_data(as_text=True)
    monkeypatch.setitem(app.config, "LAUNCH_TOKEN_TTL_SECONDS", 3600)
    token = _launch(launches, "elev-tom")
    client.set_cookie("kulturskola_kept_text", "eyJrIjoieCIsInQiOiJoYWNrIn0.forged", path=f"/assignment/{assignment}")
    assert _field(client.get(f"/assignment/{assignment}?lt={token}")) == ""


def test_a_message_sent_too_late_comes_back_in_the_message_field(app, client, launches, content, monkeypatch):
    assignment = content["assignment2"]
    token = _launch(launches, "elev-meddelande")
    assert client.post(f"/assignment/{assignment}?lt={token}", data={"text": "Klart."}).status_code == 303
    monkeypatch.setitem(app.config, "LAUNCH_TOKEN_TTL_SECONDS", -1)
    late = client.post(f"/assignment/{assignment}/message?lt={token}", data={"body": "Hur långt ska stycket vara?"})
    assert late.status_code == 401 and error_code(late) == "launch_expired"
    cookie = late.headers["Set-Cookie"]
    assert cookie.startswith("kulturskola_kept_body=") and f"Path=/assignment/{assignment};" in cookie
    monkeypatch.setitem(app.config, "LAUNCH_TOKEN_TTL_SECONDS", 3600)
    token = _launch(launches, "elev-meddelande")
    page = client.get(f"/assignment/{assignment}?lt={token}")
    body = page.get_data(as_text=True)
    assert re.search(r'<textarea id="message-body"[^>]*>Hur långt ska stycket vara\?</textarea>', body)
    sent = client.post(f"/assignment/{assignment}/message?lt={token}", data={"body": "Hur långt ska stycket vara?"})
    assert sent.status_code == 303 and "kulturskola_kept_body=;" in sent.headers.get("Set-Cookie", "")
    assert "Hur långt ska stycket vara?</textarea>" not in client.get(
        f"/assignment/{assignment}?lt={token}").get_data(as_text=True)
