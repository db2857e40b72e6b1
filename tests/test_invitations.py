"""Seat invitations (the second door, "the seat comes first"): issued against an order's budget, redeemed with the
same guarantees as a launch, revoked or expired without freeing what they did not take; the cross-check of the
pupil's school; the open pool; the CLI; the municipal console's page."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from lti_tool.db import new_session
from lti_tool.domain.errors import DomainError
from lti_tool.domain.seats import SeatRefusedError
from lti_tool.identity import OWNER_COUNTY, OWNER_INDEPENDENT, OWNER_MUNICIPALITY, SchoolFacts
from lti_tool.models import AuditEntry, CourseRound, Order, Seat, SeatInvitation
from lti_tool.services import invitations, seats

from .catalog_factory import TODAY, add_course
from .conftest import error_code, main_attrs

BORAS_SCHOOL = SchoolFacts(name="Engelbrektskolan", code="12345678", owner_name="Borås kommun",
                           owner_org_number="2120001561", owner_kind=OWNER_MUNICIPALITY, municipality_id="SE-1490")
COUNTY_SCHOOL = SchoolFacts(name="Sven Eriksonsgymnasiet", code="87654321", owner_name="Västra Götalandsregionen",
                            owner_kind=OWNER_COUNTY, municipality_id="SE-1490")
OTHER_MUNICIPALITY_SCHOOL = SchoolFacts(name="Rosendalsskolan", code="11112222", owner_name="Göteborgs Stad",
                                        owner_kind=OWNER_MUNICIPALITY, municipality_id="SE-1480")
INDEPENDENT_SCHOOL = SchoolFacts(name="Friskolan", code="33334444", owner_name="Skolbolaget AB",
                                 owner_kind=OWNER_INDEPENDENT, municipality_id="SE-1490")


@pytest.fixture
def catalog(app, demo):
    """GIT-AK-1 with a round open for enrolment ("now") and a later one; Borås orders "now" with 3 seats."""
    with new_session(app) as session:
        add_course(session)
        order = seats.set_order(session, "SE-1490", "GIT-AK-1", "now", 3)
        session.commit()
        return order.id


def issue(app, count=1, *, municipality="SE-1490", round_id="now", expires_at=None, label=None) -> list[str]:
    with app.app_context(), new_session(app) as session:
        issued = invitations.issue(session, municipality_id=municipality, course_code="GIT-AK-1", round_id=round_id,
                                   count=count, expires_at=expires_at, created_by="test", label=label)
        session.commit()
        return [item.code for item in issued]


def redeem(app, code, sub="pupil-1", *, registration_id=1, school=None, name=None):
    """The outcome, or the refusal's code (the transaction rolled back, as a view does)."""
    with app.app_context(), new_session(app) as session:
        try:
            result = invitations.redeem(session, code, registration_id=registration_id, sub=sub, school=school,
                                        pupil_name=name)
        except DomainError as error:
            session.rollback()
            return error.code
        session.commit()
        return result.outcome


def launch_seat(app, sub):
    with new_session(app) as session:
        result = seats.reserve_seat(session, registration_id=1, sub=sub, municipality_id="SE-1490",
                                    course_code="GIT-AK-1", round_id="now")
        session.commit()
        return result.outcome


def counters(app) -> tuple[int, int, int]:
    """The order's seats taken, the round's, and the active seat rows."""
    with new_session(app) as session:
        round_ = session.scalar(select(CourseRound).where(CourseRound.round_id == "now"))
        order = session.scalar(select(Order).where(Order.round_pk == round_.id, Order.municipality_id == "SE-1490"))
        rows = session.scalar(select(func.count()).select_from(Seat).where(Seat.status == "active"))
        return order.seats_taken, round_.seats_taken, rows


def invitation(app, code) -> SeatInvitation:
    with new_session(app) as session:
        found = invitations.get_invitation(session, code)
        session.expunge(found)
        return found


def refusal(app, call) -> DomainError:
    with app.app_context(), new_session(app) as session:
        with pytest.raises(DomainError) as raised:
            call(session)
        return raised.value


# -- codes ---------------------------------------------------------------------------------------------------------

def test_codes_are_random_unambiguous_and_only_their_hash_is_kept(app, catalog):
    codes = issue(app, 3)
    assert len(set(codes)) == 3
    for code in codes:
        assert len(code) == 12 and not set(code) & set("0O1IL") and set(code) <= set(invitations.ALPHABET)
    with new_session(app) as session:
        rows = list(session.scalars(select(SeatInvitation).order_by(SeatInvitation.id)))
        assert [r.code_hash for r in rows] == [hashlib.sha256(c.encode()).hexdigest() for c in codes]
        assert [r.code_hint for r in rows] == [c[-4:] for c in codes]
        stored = " ".join(str(getattr(r, column.key)) for r in rows for column in SeatInvitation.__table__.columns)
        assert not any(code in stored for code in codes)
    code = codes[0]
    shown = invitations.display_code(code)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", shown) and shown.replace("-", "") == code
    typed = f"  {shown.lower()[:7]} {shown.lower()[7:]} "
    assert invitations.normalise_code(typed) == code
    assert invitations.normalise_code(f"http://localhost/join/{shown}") == code
    with app.app_context():
        assert invitations.join_url(code.lower()) == f"http://localhost/join/{shown}"
    assert invitation(app, typed).id == invitation(app, code).id


def test_default_expiry_and_never_after_the_rounds_end(app, catalog):
    before = datetime.now(timezone.utc)
    first = invitation(app, issue(app)[0])
    assert before + timedelta(days=60) <= first.expires_at <= datetime.now(timezone.utc) + timedelta(days=60)
    late = issue(app, expires_at=datetime.now(timezone.utc) + timedelta(days=3650))[0]
    with new_session(app) as session:
        round_ = session.scalar(select(CourseRound).where(CourseRound.round_id == "now"))
        ends_on = round_.ends_on
    capped = invitation(app, late)
    assert invitations.last_day(capped) == ends_on
    assert capped.expires_at == invitations.end_of_local_day("SE-1490", ends_on)
    day = TODAY + timedelta(days=5)
    assert invitations.last_day(invitation(app, issue(app, expires_at=invitations.end_of_local_day(
        "SE-1490", day))[0])) == day
    past = refusal(app, lambda s: invitations.issue(s, municipality_id="SE-1490", course_code="GIT-AK-1",
                                                    round_id="now", count=1, created_by="test",
                                                    expires_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    assert past.code == "invalid"


def test_issue_is_refused_over_the_budget_and_without_an_order(app, catalog, monkeypatch):
    issue(app, 2)
    over = refusal(app, lambda s: invitations.issue(s, municipality_id="SE-1490", course_code="GIT-AK-1",
                                                    round_id="now", count=2, expires_at=None, created_by="t"))
    assert (over.code, over.status) == ("invitations_over_budget", 409)
    assert launch_seat(app, "lti-pupil") == "granted"  # 3 - 1 taken - 2 open = 0 free
    assert refusal(app, lambda s: invitations.issue(s, municipality_id="SE-1490", course_code="GIT-AK-1",
                                                    round_id="now", count=1, expires_at=None,
                                                    created_by="t")).code == "invitations_over_budget"
    # expired invitations no longer hold seats of the budget
    later = datetime.now(timezone.utc) + timedelta(days=61)
    monkeypatch.setattr(invitations, "_now", lambda: later)
    assert len(issue(app, 2, expires_at=later + timedelta(days=1))) == 2
    no_order = refusal(app, lambda s: invitations.issue(s, municipality_id="SE-1490", course_code="GIT-AK-1",
                                                        round_id="later", count=1, expires_at=None,
                                                        created_by="t"))
    assert (no_order.code, no_order.status) == ("course_not_offered", 404)
    no_round = refusal(app, lambda s: invitations.issue(s, municipality_id="SE-1490", course_code="GIT-AK-1",
                                                        round_id="nope", count=1, expires_at=None, created_by="t"))
    assert (no_round.code, no_round.status) == ("not_found", 404)
    zero = refusal(app, lambda s: invitations.issue(s, municipality_id="SE-1490", course_code="GIT-AK-1",
                                                    round_id="now", count=0, expires_at=None, created_by="t"))
    assert zero.code == "invalid"
    with new_session(app) as session:
        audits = list(session.scalars(select(AuditEntry).where(AuditEntry.action == invitations.ACTION_ISSUE)))
        assert [a.details["count"] for a in audits] == [2, 2] and audits[0].target == "SE-1490 GIT-AK-1 now"


# -- redeeming ------------------------------------------------------------------------------------------------------

def test_redeem_grants_a_seat_and_is_idempotent_for_the_same_pupil(app, catalog):
    code = issue(app)[0]
    assert redeem(app, invitations.display_code(code).lower()) == "granted"
    assert counters(app) == (1, 1, 1)
    redeemed = invitation(app, code)
    assert (redeemed.status, redeemed.registration_id, redeemed.sub) == ("redeemed", 1, "pupil-1")
    assert redeemed.redeemed_at is not None and redeemed.seat_id is not None
    assert redeemed.cross_check == "unknown" and redeemed.school_name is None
    assert redeem(app, code) == "held"
    assert counters(app) == (1, 1, 1)
    with app.app_context(), new_session(app) as session:
        again = invitations.redeem(session, code, registration_id=1, sub="pupil-1", school=None)
        assert (again.outcome, again.seat.id, again.round.round_id) == ("held", redeemed.seat_id, "now")


def test_another_identity_cannot_use_a_redeemed_code(app, catalog):
    code = issue(app)[0]
    assert redeem(app, code, "pupil-1") == "granted"
    assert redeem(app, code, "pupil-2") == "code_other_account"
    with new_session(app) as session:
        redeemed = invitations.get_invitation(session, code)
        with pytest.raises(DomainError) as anonymous:
            invitations.check_redeemable(redeemed, registration_id=-1, sub="")
        assert (anonymous.value.code, anonymous.value.status) == ("code_used", 409)
        with pytest.raises(DomainError) as other:
            invitations.check_redeemable(redeemed, registration_id=1, sub="pupil-2")
        assert other.value.status == 409
        invitations.check_redeemable(redeemed, registration_id=1, sub="pupil-1")
    assert counters(app) == (1, 1, 1)


def test_expired_revoked_and_unknown_codes_are_refused(app, catalog, monkeypatch):
    expired, revoked = issue(app, 2)
    with new_session(app) as session:
        invitations.revoke(session, invitation(app, revoked).id, actor="test")
        session.commit()
    assert redeem(app, revoked) == "code_revoked"
    assert redeem(app, "ABCD-EFGH-JKMN") == "code_unknown"
    assert redeem(app, "not a code at all") == "code_unknown"
    monkeypatch.setattr(invitations, "_now", lambda: datetime.now(timezone.utc) + timedelta(days=61))
    assert redeem(app, expired) == "code_expired"
    assert counters(app) == (0, 0, 0)
    with new_session(app) as session:
        statuses = {invitations.status_of(i, datetime.now(timezone.utc) + timedelta(days=61))
                    for i in session.scalars(select(SeatInvitation))}
        assert statuses == {"expired", "revoked"}
        for code, (wanted, status) in ((expired, ("code_expired", 410)), (revoked, ("code_revoked", 410)),
                                       ("ZZZZ-ZZZZ-ZZZZ", ("code_unknown", 404))):
            with pytest.raises(DomainError) as raised:
                invitations.check_redeemable(invitations.get_invitation(session, code), registration_id=1,
                                             sub="pupil-1")
            assert (raised.value.code, raised.value.status) == (wanted, status)


def test_a_budget_used_up_by_launches_meanwhile_refuses_and_leaves_the_invitation_unused(app, catalog):
    codes = issue(app, 3)
    for sub in ("lti-1", "lti-2", "lti-3"):  # launches do not wait for invitations
        assert launch_seat(app, sub) == "granted"
    with app.app_context(), new_session(app) as session:
        with pytest.raises(SeatRefusedError) as refused:
            invitations.redeem(session, codes[0], registration_id=1, sub="pupil-1", school=BORAS_SCHOOL)
        session.rollback()
    assert refused.value.code == "budget_used_up" and refused.value.waitlist and refused.value.order_id == catalog
    assert counters(app) == (3, 3, 3)
    unused = invitation(app, codes[0])
    assert (unused.status, unused.sub, unused.seat_id, unused.cross_check) == ("issued", None, None, None)


def test_the_same_pupil_with_a_launch_seat_holds_one_seat(app, catalog):
    assert launch_seat(app, "pupil-1") == "granted"
    code = issue(app)[0]
    with app.app_context(), new_session(app) as session:
        result = invitations.redeem(session, code, registration_id=1, sub="pupil-1", school=None)
        session.commit()
        assert result.outcome == "already_held" and result.seat.sub == "pupil-1"
    assert counters(app) == (1, 1, 1)
    assert invitation(app, code).status == "issued"
    assert redeem(app, code, "pupil-2") == "granted"  # the unused code still gives its place to another pupil
    assert counters(app) == (2, 2, 2)


def test_a_withdrawn_seat_is_not_taken_again_with_the_same_code(app, catalog):
    code = issue(app)[0]
    assert redeem(app, code) == "granted"
    with new_session(app) as session:
        round_pk = session.scalar(select(CourseRound.id).where(CourseRound.round_id == "now"))
        seats.withdraw(session, round_pk=round_pk, registration_id=1, sub="pupil-1")
        session.commit()
    assert redeem(app, code) == "code_used"
    assert counters(app) == (0, 0, 0)


def test_enrolment_closed_is_refused_as_at_a_launch(app, catalog, monkeypatch):
    code = issue(app)[0]
    later = datetime.now(timezone.utc) + timedelta(days=12)
    monkeypatch.setattr(seats, "_now", lambda: later)
    monkeypatch.setattr(invitations, "_now", lambda: later)
    assert redeem(app, code) == "enrolment_closed"
    assert invitation(app, code).status == "issued" and counters(app) == (0, 0, 0)


def test_a_waiting_pupil_who_redeems_leaves_the_waiting_list(app, catalog):
    from lti_tool.models import WaitlistEntry

    code = issue(app)[0]
    with new_session(app) as session:
        seats.join_waitlist(session, order_id=catalog, registration_id=1, sub="pupil-1")
        session.commit()
    assert redeem(app, code) == "granted"
    with new_session(app) as session:
        assert session.scalar(select(WaitlistEntry.status)) == "left"


@pytest.mark.parametrize("school, check", [
    (BORAS_SCHOOL, "match"), (COUNTY_SCHOOL, "check"), (OTHER_MUNICIPALITY_SCHOOL, "check"),
    (INDEPENDENT_SCHOOL, "check"), (None, "unknown"), (SchoolFacts(), "unknown")])
def test_the_school_is_a_cross_check_not_a_gate(app, catalog, school, check):
    code = issue(app)[0]
    assert redeem(app, code, school=school) == "granted"
    redeemed = invitation(app, code)
    assert redeemed.cross_check == check
    if school is not None and school.name:
        assert (redeemed.school_name, redeemed.school_code, redeemed.school_owner,
                redeemed.school_municipality_id) == (school.name, school.code, school.owner_name,
                                                     school.municipality_id)


def test_the_pupils_name_is_kept_only_with_roster_names(app, catalog):
    first, second = issue(app, 2)
    assert redeem(app, first, "pupil-1", name="Alva Andersson") == "granted"
    assert invitation(app, first).pupil_name is None
    app.config["ROSTER_NAMES"] = True
    assert redeem(app, second, "pupil-2", name="  Bo   Berg ") == "granted"
    assert invitation(app, second).pupil_name == "Bo Berg"


# -- the open pool ------------------------------------------------------------------------------------------------

def claim(app, order_id, sub, school):
    with app.app_context(), new_session(app) as session:
        try:
            result = invitations.claim_open_pool(session, order_id=order_id, registration_id=1, sub=sub,
                                                 school=school)
        except DomainError as error:
            session.rollback()
            return error.code
        session.commit()
        return result.outcome


def test_the_open_pool_admits_only_pupils_of_the_municipalitys_own_schools(app, catalog):
    assert claim(app, catalog, "pupil-1", BORAS_SCHOOL) == "open_pool_closed"  # off by default
    with new_session(app) as session:
        invitations.set_open_pool(session, catalog, True, actor="test")
        session.commit()
    for school in (COUNTY_SCHOOL, OTHER_MUNICIPALITY_SCHOOL, INDEPENDENT_SCHOOL, None):
        assert claim(app, catalog, "pupil-1", school) == "open_pool_closed"
    assert claim(app, catalog, "pupil-1", BORAS_SCHOOL) == "granted"
    assert claim(app, catalog, "pupil-1", BORAS_SCHOOL) == "held"
    assert claim(app, catalog, "pupil-2", BORAS_SCHOOL) == "granted"
    assert claim(app, catalog, "pupil-3", BORAS_SCHOOL) == "granted"
    assert claim(app, catalog, "pupil-4", BORAS_SCHOOL) == "budget_used_up"  # never over the budget
    assert counters(app) == (3, 3, 3)
    assert claim(app, 999, "pupil-1", BORAS_SCHOOL) == "not_found"
    with new_session(app) as session:
        audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "order.open_pool"))
        assert audit.details == {"order": catalog, "open_pool": True}


# -- revoking, listing, counting ----------------------------------------------------------------------------------

def test_revoke_only_an_unredeemed_invitation_and_free_nothing(app, catalog):
    open_code, used_code = issue(app, 2)
    assert redeem(app, used_code) == "granted"
    open_id, used_id = invitation(app, open_code).id, invitation(app, used_code).id
    with new_session(app) as session:
        assert invitations.revoke(session, open_id, actor="test").status == "revoked"
        assert invitations.revoke(session, open_id, actor="test").status == "revoked"  # twice: nothing more
        with pytest.raises(DomainError) as conflict:
            invitations.revoke(session, used_id, actor="test")
        assert (conflict.value.code, conflict.value.status) == ("conflict", 409)
        with pytest.raises(DomainError) as other:
            invitations.revoke(session, open_id, actor="test", municipality_id="NO-0301")
        assert other.value.status == 404
        session.commit()
    assert counters(app) == (1, 1, 1)
    with new_session(app) as session:
        audits = list(session.scalars(select(AuditEntry).where(AuditEntry.action == invitations.ACTION_REVOKE)))
        assert len(audits) == 1 and audits[0].details["invitation"] == open_id


def test_list_and_counts(app, catalog, monkeypatch):
    codes = issue(app, 3)
    assert redeem(app, codes[0]) == "granted"
    with new_session(app) as session:
        invitations.revoke(session, invitation(app, codes[1]).id, actor="test")
        session.commit()
    with app.app_context(), new_session(app) as session:
        assert invitations.order_counts(session, "SE-1490") == {catalog: (1, 1, 1, 0)}
        assert [i.code_hint for i in invitations.list_invitations(session, status="open")] == [codes[2][-4:]]
        assert len(invitations.list_invitations(session, municipality_id="se-1490", course_code="GIT-AK-1",
                                                round_id="now")) == 3
        assert invitations.list_invitations(session, municipality_id="NO-0301") == []
        assert [i.status for i in invitations.list_invitations(session, status="redeemed")] == ["redeemed"]
        with pytest.raises(DomainError):
            invitations.list_invitations(session, status="bogus")
    monkeypatch.setattr(invitations, "_now", lambda: datetime.now(timezone.utc) + timedelta(days=61))
    with new_session(app) as session:
        assert invitations.order_counts(session, "SE-1490") == {catalog: (0, 1, 1, 1)}
        assert len(invitations.list_invitations(session, status="expired")) == 1


@pytest.mark.parametrize("locale, delimiter", [("en", ","), ("sv", ";"), ("nb", ";"), ("nn", ";")])
def test_the_csv_of_issued_codes(app, catalog, locale, delimiter):
    with app.app_context(), new_session(app) as session:
        issued = invitations.issue(session, municipality_id="SE-1490", course_code="GIT-AK-1", round_id="now",
                                   count=2, expires_at=None, created_by="test")
        text = invitations.invitations_csv(issued, locale)
        last = invitations.last_day(issued[0].invitation).isoformat()
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter))
    assert len(rows) == 3 and all(len(row) == 6 for row in rows)
    if locale == "en":
        assert rows[0] == ["Code", "Link", "Course", "Round", "Municipality", "Valid until"]
    code = invitations.display_code(issued[0].code)
    assert rows[1][0] == code and rows[1][1] == f"http://localhost/join/{code}"
    assert rows[1][3:] == ["now", "Borås", last]
    assert rows[1][2] == ("Course GIT-AK-1" if locale == "en" else "Kurs GIT-AK-1" if locale == "sv"
                          else "Kurs GIT-AK-1 (nb)")


# -- the CLI -------------------------------------------------------------------------------------------------------

def cli(app, *args, code=0):
    result = app.test_cli_runner().invoke(args=["invitations", *args])
    assert result.exit_code == code, result.output
    return result


def test_cli_issue_list_and_revoke_are_audited(app, catalog):
    issued = cli(app, "issue", "--municipality", "se-1490", "--course", "GIT-AK-1", "--round", "now", "--count", "2",
                 "--label", "elevnr 17", "--by", "anna")
    lines = issued.stdout.strip().splitlines()
    assert len(lines) == 2
    code, link = lines[0].split("\t")
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code) and link == f"http://localhost/join/{code}"
    assert "2 invitation(s)" in issued.stderr
    found = invitation(app, code)
    assert found.label == "elevnr 17" and found.created_by == "cli anna"

    table = cli(app, "issue", "--municipality", "SE-1490", "--course", "GIT-AK-1", "--round", "now", "--count", "1",
                "--expires", (TODAY + timedelta(days=7)).isoformat(), "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(table.lstrip("\ufeff")), delimiter=";"))  # Swedish: semicolons
    assert len(rows) == 2 and rows[1][5] == (TODAY + timedelta(days=7)).isoformat()

    refused = cli(app, "issue", "--municipality", "SE-1490", "--course", "GIT-AK-1", "--round", "now", "--count", "1",
                  code=1)
    assert "seats free" in refused.output
    cli(app, "issue", "--municipality", "SE-1490", "--course", "GIT-AK-1", "--round", "later", "--count", "1", code=1)

    listing = cli(app, "list", "--municipality", "SE-1490").stdout
    assert len(listing.strip().splitlines()) == 3 and f"…{code[-4:]}" in listing and "elevnr 17" in listing
    assert redeem(app, code, school=COUNTY_SCHOOL) == "granted"
    redeemed = cli(app, "list", "--status", "redeemed").stdout
    assert "\tredeemed\t" in redeemed and "check\tSven Eriksonsgymnasiet (Västra Götalandsregionen)" in redeemed

    open_id = invitation(app, lines[1].split("\t")[0]).id
    assert "revoked" in cli(app, "revoke", str(open_id), "--by", "anna").stdout
    assert "redeemed" in cli(app, "revoke", str(found.id), code=1).output
    assert "no invitation" in cli(app, "revoke", "999", code=1).output
    assert len(cli(app, "list", "--status", "revoked").stdout.strip().splitlines()) == 1
    with new_session(app) as session:
        audits = [(a.actor, a.action) for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert audits == [("cli anna", "invitations.issue"), (audits[1][0], "invitations.issue"),
                      ("cli anna", "invitation.revoke")]
    assert audits[1][0].startswith("cli ")


# -- the municipal console -----------------------------------------------------------------------------------------

def console_token(launches, municipality="SE-1490", user="admin-1", role="administrator"):
    response = launches.launch(launches.spec(municipality, role=role, user=user))
    assert response.status_code == 303, response.get_data(as_text=True)
    return re.search(r"lt=([^&\"#]+)", response.headers["Location"]).group(1)


def issue_on_console(client, token, order_id, count="2", **form):
    page = client.get(f"/municipal/invitations?lt={token}").get_data(as_text=True)
    batch = re.search(r'name="batch" value="([^"]+)"', page).group(1)
    return client.post(f"/municipal/invitations/issue?lt={token}",
                       data={"order": order_id, "count": count, "batch": batch, **form})


def test_console_issues_codes_shown_once_with_a_csv_download(app, client, launches, catalog):
    token = console_token(launches)
    console = client.get(f"/municipal/?lt={token}").get_data(as_text=True)
    assert f"/municipal/invitations?lt={token}" in console  # linked from the console
    page = client.get(f"/municipal/invitations?lt={token}")
    assert page.status_code == 200 and main_attrs(page)["page"] == "invitations"
    assert f'data-order-id="{catalog}"' in page.get_data(as_text=True)

    issued = issue_on_console(client, token, catalog, label="Vt 27", expires=(TODAY + timedelta(days=9)).isoformat())
    assert issued.status_code == 200 and issued.headers["Cache-Control"] == "no-store"
    body = issued.get_data(as_text=True)
    codes = re.findall(r"<span class=\"code\" data-code>([A-Z2-9-]{14})</span>", body)
    assert len(codes) == 2 and all(f"http://localhost/join/{c}" in body for c in codes)
    for code in codes:
        found = invitation(app, code)
        assert (found.label, found.created_by.startswith("SE-1490 administrator")) == ("Vt 27", True)
        assert invitations.last_day(found) == TODAY + timedelta(days=9)

    again = client.get(f"/municipal/invitations?lt={token}").get_data(as_text=True)
    assert not any(c in again for c in codes) and not any(c.replace("-", "") in again for c in codes)
    assert re.search(rf'id="order-{catalog}"[^>]*data-open="2"', again)

    download = client.post(f"/municipal/invitations/download?lt={token}", data={"code": codes})
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert download.headers["Content-Disposition"].startswith("attachment; filename=invitations-SE-1490-")
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert [row[0] for row in rows[1:]] == codes

    with new_session(app) as session:
        audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "invitations.issue"))
        assert audit.details["count"] == 2 and audit.actor.startswith("SE-1490 administrator")


def test_console_refusals_are_shown_inline_and_never_cross_municipalities(app, client, launches, catalog):
    token = console_token(launches)
    over = issue_on_console(client, token, catalog, count="4")
    assert over.status_code == 409 and error_code(over) == "invitations_over_budget"
    assert issue_on_console(client, token, catalog, count="0").status_code == 400
    assert error_code(issue_on_console(client, token, catalog, expires="31/12")) == "invalid"
    # the same form posted twice (a reload) issues nothing more
    page = client.get(f"/municipal/invitations?lt={token}").get_data(as_text=True)
    batch = re.search(r'name="batch" value="([^"]+)"', page).group(1)
    form = {"order": catalog, "count": "1", "batch": batch}
    assert client.post(f"/municipal/invitations/issue?lt={token}", data=form).status_code == 200
    twice = client.post(f"/municipal/invitations/issue?lt={token}", data=form)
    assert twice.status_code == 409 and error_code(twice) == "conflict"
    assert counters(app) == (0, 0, 0)

    # Oslo's order and codes are not Borås's
    with app.app_context(), new_session(app) as session:
        oslo = seats.set_order(session, "NO-0301", "GIT-AK-1", "now", 2)
        session.commit()
        oslo_id = oslo.id
    oslo_code = issue(app, municipality="NO-0301")[0]
    assert issue_on_console(client, token, oslo_id).status_code == 404
    foreign = client.post(f"/municipal/invitations/download?lt={token}",
                          data={"code": invitations.display_code(oslo_code)})
    assert foreign.status_code == 404 and error_code(foreign) == "code_unknown"
    oslo_invitation = invitation(app, oslo_code).id
    assert client.post(f"/municipal/invitations/{oslo_invitation}/revoke?lt={token}",
                       data={"confirm": "yes"}).status_code == 404
    assert client.post(f"/municipal/orders/{oslo_id}/open-pool?lt={token}", data={"open_pool": "on"}).status_code == 404
    assert invitation(app, oslo_code).status == "issued"
    assert client.get(f"/municipal/invitations?lt={token}&municipality=NO-0301").status_code == 403

    # no launch token: the CSRF check refuses the form
    assert error_code(client.post("/municipal/invitations/issue", data={"order": catalog, "count": "1"})) \
        == "csrf_invalid"
    # a pupil's launch never opens the console
    pupil = launches.launch(launches.spec("SE-1490", user="p1", course="GIT-AK-1"))
    pupil_token = re.search(r"lt=([^&\"#]+)", pupil.headers["Location"]).group(1)
    refused = client.get(f"/municipal/invitations?lt={pupil_token}")
    assert refused.status_code == 403 and error_code(refused) == "municipal_console_forbidden"


def test_console_revokes_after_confirming_and_shows_the_check_mark(app, client, launches, catalog):
    first, second = issue(app, 2)
    assert redeem(app, first, school=COUNTY_SCHOOL) == "granted"
    token = console_token(launches)
    page = client.get(f"/municipal/invitations?lt={token}").get_data(as_text=True)
    redeemed_id, open_id = invitation(app, first).id, invitation(app, second).id
    row = re.search(rf'<tr id="invitation-{redeemed_id}".*?</tr>', page, re.S).group(0)
    assert 'data-check="check"' in row and "Sven Eriksonsgymnasiet" in row and "Västra Götalandsregionen" in row
    assert "/revoke" not in row  # a redeemed invitation has no revoke button
    assert f"/municipal/invitations/{open_id}/revoke" in page

    confirm = client.post(f"/municipal/invitations/{open_id}/revoke?lt={token}")
    assert confirm.status_code == 200 and main_attrs(confirm)["confirm"] == "revoke"
    assert invitation(app, second).status == "issued"
    done = client.post(f"/municipal/invitations/{open_id}/revoke?lt={token}", data={"confirm": "yes"})
    assert done.status_code == 303 and "revoked=1" in done.headers["Location"]
    assert invitation(app, second).status == "revoked"
    conflict = client.post(f"/municipal/invitations/{redeemed_id}/revoke?lt={token}", data={"confirm": "yes"})
    assert conflict.status_code == 409 and error_code(conflict) == "conflict"
    assert counters(app) == (1, 1, 1)
    listed = client.get(f"/municipal/invitations?lt={token}&status=revoked").get_data(as_text=True)
    assert f'id="invitation-{open_id}"' in listed and f'id="invitation-{redeemed_id}"' not in listed
    with new_session(app) as session:
        audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "invitation.revoke"))
        assert audit.details["invitation"] == open_id and audit.actor.startswith("SE-1490 administrator")


def test_console_switches_the_open_pool(app, client, launches, catalog):
    token = console_token(launches)
    switched = client.post(f"/municipal/orders/{catalog}/open-pool?lt={token}", data={"open_pool": "on"})
    assert switched.status_code == 303
    page = client.get(switched.headers["Location"]).get_data(as_text=True)
    assert re.search(rf'id="order-{catalog}"[^>]*data-open-pool="on"', page)
    assert f"http://localhost/join/pool/{catalog}" in page
    with new_session(app) as session:
        assert session.get(Order, catalog).open_pool is True
    client.post(f"/municipal/orders/{catalog}/open-pool?lt={token}", data={"open_pool": "off"})
    with new_session(app) as session:
        assert session.get(Order, catalog).open_pool is False
        actions = [(a.action, a.details["open_pool"]) for a in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "order.open_pool").order_by(AuditEntry.id))]
    assert actions == [("order.open_pool", True), ("order.open_pool", False)]
