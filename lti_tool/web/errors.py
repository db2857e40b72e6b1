"""The page every refused request gets: a 4xx status, a stable code on ``<main data-error-code>``, and a
sentence a pupil understands in their language. The detail goes to the log only."""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError
from flask_babel import lazy_gettext as _l

from ..clock import now
from ..domain.errors import DomainError

log = logging.getLogger("lti_tool.refused")

_SECURITY = _l("We could not confirm that you came here from your school's learning platform. "
               "Go back to the learning platform and open the course again.")
_INCOMPLETE = _l("Your learning platform sent an incomplete launch. Go back and open the course again; "
                 "if it happens again, tell your teacher.")

MESSAGES = {
    "login_invalid": _INCOMPLETE,
    "target_link_uri_invalid": _INCOMPLETE,
    "registration_unknown": _l("Your learning platform is not registered with the national course catalog yet. "
                               "Tell your teacher or the platform's administrator."),
    "registration_ambiguous": _l("Your learning platform must use its own sign-in address for this tool. "
                                 "Tell the platform's administrator."),
    "platform_error": _l("Your learning platform did not let you sign in to the course. "
                         "Go back and try again."),
    "state_missing": _SECURITY,
    "state_invalid": _l("Your browser did not keep the sign-in information, or it took too long. "
                        "Go back to the learning platform and open the course again."),
    "token_missing": _SECURITY,
    "token_malformed": _SECURITY,
    "issuer_invalid": _SECURITY,
    "audience_invalid": _SECURITY,
    "azp_invalid": _SECURITY,
    "signature_invalid": _SECURITY,
    "key_unknown": _SECURITY,
    "platform_keys_unavailable": _l("We could not reach your learning platform to check the launch. "
                                    "Try again in a few minutes."),
    "service_unavailable": _l("The course catalog is not answering right now. Nothing has been booked or "
                              "changed. Wait a minute and open the course again from your learning platform."),
    "token_expired": _l("The launch took too long or your device's clock is wrong. "
                        "Go back to the learning platform and open the course again."),
    "token_not_yet_valid": _l("The launch took too long or your device's clock is wrong. "
                              "Go back to the learning platform and open the course again."),
    "nonce_missing": _SECURITY,
    "nonce_invalid": _SECURITY,
    "nonce_replayed": _l("This launch has already been used. Go back to the learning platform and open "
                         "the course again."),
    "version_invalid": _INCOMPLETE,
    "message_type_unknown": _INCOMPLETE,
    "message_type_unsupported": _l("This kind of link to the course catalog is not supported. "
                                   "Tell your teacher."),
    "sub_missing": _INCOMPLETE,
    "roles_missing": _INCOMPLETE,
    "resource_link_missing": _INCOMPLETE,
    "deployment_id_invalid": _INCOMPLETE,
    "deployment_pending": _l("This installation is waiting for approval by the national course catalog. "
                             "You can open the course once it has been approved."),
    "deployment_inactive": _l("This installation of the course catalog has been turned off. "
                              "Tell your teacher or your arts school."),
    "municipality_unresolved": _l("We could not tell which municipality's arts school you belong to, so the "
                                  "course cannot open. Tell your teacher; nothing has been booked for you."),
    "municipality_not_allowed": _l("Your municipality is not part of this installation of the course catalog. "
                                   "Tell your teacher; nothing has been booked for you."),
    "signin_invalid": _l("We could not verify the answer from your school's sign-in. Start again from the "
                         "invitation link and sign in once more."),
    "signin_replayed": _l("This sign-in has already been used. Start again from the invitation link and sign in "
                          "once more."),
    "signin_expired": _l("The sign-in took too long. Start again from the invitation link and sign in once more."),
    "signin_refused": _l("Your school's sign-in did not let you in. Try again, or ask your arts school for help."),
    "signin_not_activated": _l("Your municipality has not switched this service on in Feide yet. Ask your school "
                               "or your arts school to do so; until then you cannot sign in here."),
    "signin_no_attributes": _l("Your school's sign-in did not tell us who you are. Your school has to release "
                               "your user id to the course catalog; ask your school or your arts school."),
    "signin_unavailable": _l("Your school's sign-in is not answering right now. Nothing has been booked. "
                             "Try again in a few minutes."),
    "signin_required": _l("Sign in with your school account first."),
    "signin_provider_unknown": _l("This way of signing in is not offered. Go back and pick your school's sign-in."),
    "code_unknown": _l("We do not know this code. Check that you typed it exactly as you got it from your "
                             "arts school."),
    "code_used": _l("This code has already been used. Each code gives one place; ask your arts school "
                          "for a new one."),
    "code_other_account": _l("This code was used by another account. If that was you, sign out and sign "
                                   "in with that account; otherwise ask your arts school for a new code."),
    "code_expired": _l("This code has expired. Ask your arts school for a new one."),
    "code_revoked": _l("This code is no longer valid. Ask your arts school."),
    "invitations_over_budget": _l("There are not enough free places in the order for that many invitations."),
    "provider_invalid": _l("This identity provider's settings are not valid."),
    "open_pool_closed": _l("This course has no open places for pupils of your school. Ask your arts school for "
                           "an invitation code."),
    "launch_expired": _l("Your session has ended. Go back to the learning platform and open the course again."),
    "not_found": _l("The page was not found."),
    "course_unknown": _l("This link points to a course that is not in the national catalog. Tell your teacher."),
    "round_unknown": _l("This link points to a course round that does not exist. Tell your teacher."),
    "course_retired": _l("This course is no longer offered. Ask your arts school which courses you can take."),
    "course_not_offered": _l("Your municipality's arts school does not offer this course. Ask your arts school "
                             "which distance courses you can take."),
    "enrolment_closed": _l("Enrolment for this course is closed. Ask your arts school about the next round."),
    "budget_used_up": _l("All the places your municipality has for this course are taken. You can join the "
                         "waiting list: you get a place if one becomes free."),
    "course_full": _l("The course is full. You can join the waiting list: you get a place if one becomes free."),
    "withdrawal_closed": _l("The last day to leave the course has passed. Talk to your teacher."),
    "upload_type": _l("This kind of file cannot be handed in. Hand in a recording, a video, a picture or a PDF."),
    # An upload in pieces (web/hand_in_uploads.py); its page says these under the file field.
    "upload_gone": _l("This upload is no longer there. Choose your file again and hand it in."),
    "upload_incomplete": _l("Not all of your file has arrived yet. Press the button again to send the rest."),
    "upload_interrupted": _l("The connection was lost while your file was being sent. Press the button again to "
                             "go on from where it stopped."),
    "upload_offset": _l("Part of your file could not be received. Press the button again to go on from where it "
                        "stopped."),
    "upload_chunk_invalid": _l("Part of your file could not be received. Press the button again to go on from where "
                               "it stopped."),
    "upload_chunk_too_large": _l("Part of your file could not be received. Reload the page and try again."),
    "upload_request_invalid": _l("Your file could not be described to the tool. Choose it again."),
    "upload_too_large": _l("The file is too large. Make it smaller (for example a shorter recording) and try again."),
    "upload_empty": _l("The file is empty. Choose the file again."),
    "hand_in_empty": _l("There is nothing to hand in yet. Write your answer or choose a file."),
    "hand_in_too_long": _l("Your answer is too long. Shorten it and try again."),
    "already_reviewed": _l("Your teacher has already reviewed this work, so it cannot be handed in again."),
    "feedback_empty": _l("Write some feedback for the pupil before saving."),
    "score_invalid": _l("The score must be a number from 0 up to the assignment's maximum."),
    "forbidden": _l("You do not have access to this page."),
    "round_teacher_only": _l("Only the teachers of this course round can do this."),
    "message_forbidden": _l("Only the pupil who handed in the work and the round's teachers write here. You can "
                            "read the messages."),
    "message_empty": _l("Write your message before sending it."),
    "message_too_long": _l("The message is too long. Shorten it (at most 4000 characters) and send it again."),
    "announcement_empty": _l("Write the announcement before posting it."),
    "announcement_too_long": _l("The announcement is too long. Shorten it (at most 4000 characters) and post it "
                                "again."),
    "showcase_off": _l("The showcase of this course round is switched off, so nothing can be shared on it now."),
    "showcase_not_reviewed": _l("You can share your work on the showcase once your teacher has given feedback on "
                                "it."),
    "showcase_already_shared": _l("This work is already on the showcase."),
    "caption_too_long": _l("The caption is too long. Shorten it (at most 500 characters) and try again."),
    "municipal_console_forbidden": _l("The municipality's console is only for the platform's administrators who are "
                                      "registered as the municipality's arts-school contact. Ask the national course "
                                      "catalog's staff to register you."),
    "context_missing": _l("Your learning platform did not say which course this link belongs to, so no pupils' "
                          "work can be shown. Open the course from its page in the learning platform; if it "
                          "happens again, tell the platform's administrator."),
    "seat_missing": _l("You do not have a place in this round of the course."),
    "deep_linking_forbidden": _l("Only teachers and administrators can place courses."),
    "deep_linking_settings_missing": _INCOMPLETE,
    "registration_pending": _l("This learning platform's registration waits for approval by the national course "
                               "catalog. You can open the course once it has been approved."),
    "registration_invalid": _l("The registration could not start: the platform did not say where its settings are."),
    "registration_config_unavailable": _l("The platform's settings could not be fetched. Try the registration again "
                                          "in a few minutes."),
    "registration_config_invalid": _l("The platform's settings are incomplete, so the tool cannot register."),
    "registration_issuer_mismatch": _l("The platform's settings do not belong to the platform that asked. For "
                                       "safety the tool was not registered."),
    "registration_url_unsafe": _l("The platform gave an address the tool does not use: it must be an https address "
                                  "without a user name or password. For safety the tool was not registered."),
    "registration_refused": _l("The platform refused the registration. Ask the platform's administrator to check "
                               "its LTI settings and try again."),
    "registration_expired": _l("The registration took too long. Start it again from the platform."),
    "budget_below_taken": _l("The budget cannot be lower than the seats already taken."),
    "budget_invalid": _l("The seat budget must be a whole number, 0 or more."),
    "waitlist_expired": _l("The offer to join the waiting list has expired. Open the course again from your "
                           "learning platform."),
    "rate_limited": _l("Too many attempts to open courses have come from here just now. Wait a minute and open "
                       "the course again."),
    "error": _l("Something went wrong with this request. Go back and try again; if it happens again, tell your "
                "teacher."),
    "launch_invalid": _SECURITY,
    "claim_invalid": _INCOMPLETE,
    "conflict": _l("This could not be saved because it clashes with what is already there. Reload the page and "
                   "check."),
    "invalid": _l("Something that was entered is not valid. Check it and try again."),
    "no_hand_in": _l("This assignment has nothing to hand in."),
    "pupil_ambiguous": _l("More than one pupil matches. Name the learning platform too."),
    "roster_invalid": _l("The learning platform's member list could not be read. The last list the tool received "
                         "is shown."),
    "round_closed": _l("This course round is closed, so it can no longer be ordered. Choose a round that is "
                       "open."),
    "role_not_served": _l("Your role in this course (for example parent, observer or guest) does not give a place "
                          "in it. Pupils and teachers open the course themselves. Nothing has been booked."),
    "review_forbidden": _l("Feedback and scores in this round are given by the round's teacher. You can follow "
                           "your pupils' work and the feedback they get here."),
    "invitation_invalid": _l("This teaching invitation is not valid or has already been used. Ask the national "
                             "course catalog's staff for a new one."),
    "invitation_expired": _l("This teaching invitation has expired. Ask the national course catalog's staff for a "
                             "new one."),
    "invitation_not_teacher": _l("Open the course catalog from your learning platform as a teacher to accept a "
                                 "teaching invitation."),
    "method_not_allowed": _l("This address is opened by your learning platform, not directly. Go back to the "
                             "learning platform and open the course from there."),
    "too_large": _l("What was sent is larger than the tool accepts."),
    "bad_request": _l("The request could not be understood. Go back and try again."),
    "csrf_invalid": _l("This form could not be accepted: it was sent from another page or site, or it was left "
                       "open too long. Go back, reload the page and try again."),
}
# Flask's own refusals, by HTTP status.
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}
TITLES = {
    "service_unavailable": _l("Try again in a minute"),
    "registration_pending": _l("Waiting for approval"),
    "budget_used_up": _l("No place left"),
    "course_full": _l("No place left"),
    "course_not_offered": _l("Course not offered"),
    "enrolment_closed": _l("Enrolment closed"),
    "deployment_pending": _l("Waiting for approval"),
    "launch_expired": _l("Session ended"),
    "not_found": _l("Not found"),
    "rate_limited": _l("Too many attempts"),
}
# Dynamic registration's refusals are read by the platform's administrator, not by a pupil.
TITLES.update(dict.fromkeys(("registration_invalid", "registration_config_unavailable", "registration_config_invalid",
                             "registration_issuer_mismatch", "registration_url_unsafe", "registration_refused",
                             "registration_expired"), _l("The tool could not be registered")))
DEFAULT_TITLE = _l("The course could not be opened")
DEFAULT_MESSAGE = _SECURITY


# Refusals that are part of an ordinary day (no place left, enrolment closed, a session that ended, a link not
# set up yet): shown as a plain notice, the error code only under the administrator's fold; the rest as alerts.
ORDINARY = frozenset({"budget_used_up", "course_full", "enrolment_closed", "course_not_offered", "course_retired",
                      "launch_expired", "waitlist_expired", "withdrawal_closed", "deployment_pending",
                      "open_pool_closed", "code_used", "code_expired", "not_found"})


def render_error(code: str, status: int, detail: str = "", **context):
    status = status if 400 <= status < 500 or status in (500, 503) else 400  # 503: an outage (see outages.py)
    log.warning("refused code=%s status=%s detail=%s", code, status, detail)
    g.error_page = True  # shown in whatever frame it was opened in (web/security.py)
    # For the platform's administrator, under a fold: what to give national staff, who find the refusal's detail
    # in the log by its request id (the detail itself stays in the log). The address is the route's pattern, never
    # the path, which may name a pupil or a hand-in.
    rule = request.url_rule.rule if request.url_rule is not None else None
    support = {"request_id": g.get("request_id"), "at": now().strftime("%Y-%m-%d %H:%M:%S UTC"),
               "what": f"{request.method} {rule}" if rule else None}
    return render_template("error.html", code=code, title=TITLES.get(code, DEFAULT_TITLE),
                           message=MESSAGES.get(code, DEFAULT_MESSAGE), support=support, ordinary=code in ORDINARY,
                           **context), status


def render_domain_error(error: DomainError):
    return render_error(error.code, error.status, error.detail)


def _roll_back_request() -> None:
    """Undo what the refused request wrote (nothing of it is committed), as a refusal never keeps half a change.
    A session that cannot even roll back (its connection is gone) is dropped, as :mod:`.outages` does."""
    session = g.get("db_session")
    if session is None:
        return
    try:
        session.rollback()
    except Exception:  # the connection is gone: the pool replaces it
        log.debug("rolling back after a refusal failed", exc_info=True)
        g.pop("db_session", None)
        try:
            session.close()
        except Exception:
            log.debug("closing the session after a refusal failed", exc_info=True)


def init_app(app: Flask) -> None:
    """Every :class:`DomainError` a view does not answer itself (a form shown again with its error inline) is
    a refusal: the request's transaction is rolled back and the error page rendered."""

    @app.errorhandler(DomainError)
    def _refused(error: DomainError):
        _roll_back_request()
        return render_domain_error(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        """Flask's own refusals (an unknown address, a method the address does not take, ...) are the tool's
        error page too, in the visitor's language, with their status."""
        _roll_back_request()
        status = error.code or 400
        return render_error(HTTP_CODES.get(status, "error"), status if status < 500 else 500, error.description or "")

    @app.errorhandler(InternalServerError)
    def _failed(error: InternalServerError):
        _roll_back_request()
        log.error("request failed: %s", error.original_exception.__class__.__name__ if error.original_exception
                  else "error", exc_info=error.original_exception)
        return render_error("error", 500)
