"""Cross-site request forgery: one check before every state-changing request of every blueprint.

Default deny. A ``POST``/``PUT``/``PATCH``/``DELETE`` is let through only when its endpoint (or its
blueprint) is named in :data:`RULES`, and the request carries the proof that rule asks for:

``SESSION``
    The staff console: the form field ``csrf`` equals the token kept in the staff session. A session without a
    token proves nothing (there is no fallback value).
``LAUNCH_TOKEN``
    Pages reached after a launch (pupil, teacher, municipal console, placing a course): the launch token
    (``lt``), a signed, short-lived secret that only the browser that made the launch holds. Those pages live
    in the platform's third-party frame, where a cookie-bound token may never come back, so the launch token
    is the proof.
``signed(field, salt)``
    A form that carries a value the tool signed for it: the waiting-list offer (``wt``) and the dynamic
    registration form (``carried``, which holds no one's authority: the page is public and the platform's
    registration token travels inside it).
``LAUNCH_OR_SESSION``
    The teacher's classroom (``web/teacher.py``): a teacher comes either by a launch (the launch token, as
    above) or signed in by e-mail through the staff OpenID Connect provider (the session's token, as
    ``SESSION``). The page then acts for the launch whenever the request carries a launch token, and for the
    session only when it carries none, so either proof stands for the one who acts.
``PROTOCOL``
    The LTI login and launch: posted cross-site by the platform by design, and proven by the OIDC state, the
    nonce and the id_token's signature, all checked by the launch itself.
``SANDBOX``
    The development sandbox platform (never on in production).

A request refused here gets the tool's error page with code ``csrf_invalid`` and status 400.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from flask import Flask, request, session
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..config import settings
from .errors import render_error
from .launch_token import WAITLIST_OFFER_SECONDS, WAITLIST_SALT, launch_token_signed
from .register import REGISTRATION_FORM_SECONDS, SALT as REGISTER_SALT

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class Proof:
    kind: str
    field: str = ""
    salt: str = ""
    max_age: int = 0
    options: tuple["Proof", ...] = ()  # kind "any": one of these


SESSION = Proof("session", field="csrf")
LAUNCH_TOKEN = Proof("launch_token", field="lt")
PROTOCOL = Proof("protocol")
SANDBOX = Proof("sandbox")
LAUNCH_OR_SESSION = Proof("any", options=(LAUNCH_TOKEN, SESSION))


def signed(field: str, salt: str, max_age: int) -> Proof:
    return Proof("signed", field=field, salt=salt, max_age=max_age)


RULES: dict[str, Proof] = {
    # Blueprints: every state-changing view of theirs needs this proof.
    "staff": SESSION,
    "pupil": LAUNCH_TOKEN,
    "teacher": LAUNCH_OR_SESSION,
    "classroom": LAUNCH_OR_SESSION,  # the teacher's side of announcements, messages and the showcase
    "municipal": LAUNCH_TOKEN,
    "deep_link": LAUNCH_TOKEN,
    "sandbox": SANDBOX,
    "sandbox_idp_oidc": SANDBOX,  # the sandbox OpenID Connect provider (its token endpoint, its person picker)
    "sandbox_idp_saml": SANDBOX,  # the sandbox SAML IdP (its person picker posts the signed response)
    "school": SESSION,  # the second door's forms (accept an invitation, claim from the open pool, sign out)
    # Single endpoints: they win over their blueprint's rule.
    "lti.login": PROTOCOL,
    "lti.launch": PROTOCOL,
    "lti.launch_complete": PROTOCOL,
    "pupil.join_waitlist": signed("wt", WAITLIST_SALT, WAITLIST_OFFER_SECONDS),
    "register.finish": signed("carried", REGISTER_SALT, REGISTRATION_FORM_SECONDS),
    "school.acs": PROTOCOL,  # a SAML response: its signature and its one-time InResponseTo are the proof
    "teacher.accept_invitation": LAUNCH_TOKEN,  # binds the launch's platform account: a launch only
}


def rule_for(endpoint: str | None, blueprint: str | None) -> Proof | None:
    if endpoint and endpoint in RULES:
        return RULES[endpoint]
    if blueprint and blueprint in RULES:
        return RULES[blueprint]
    return None


def _proven(proof: Proof) -> bool:
    if proof.kind == "any":
        return any(_proven(option) for option in proof.options)
    if proof.kind == "protocol":
        return True
    if proof.kind == "sandbox":
        return settings().sandbox
    if proof.kind == "session":
        expected = session.get("csrf")
        given = request.form.get(proof.field, "")
        return bool(expected) and bool(given) and hmac.compare_digest(given.encode(), str(expected).encode())
    if proof.kind == "launch_token":
        return launch_token_signed(request.values.get(proof.field, ""))
    if proof.kind == "signed":
        try:
            URLSafeTimedSerializer(settings().secret_key, salt=proof.salt).loads(
                request.form.get(proof.field, ""), max_age=proof.max_age)
        except BadSignature:
            return False
        return True
    return False


def init_app(app: Flask) -> None:
    @app.before_request
    def _csrf():
        if request.method in SAFE_METHODS or request.endpoint is None:
            return None  # reads, and URLs that answer 404/405 anyway
        if request.endpoint == "static":
            return None
        proof = rule_for(request.endpoint, request.blueprint)
        if proof is not None and _proven(proof):
            return None
        return render_error("csrf_invalid", 400, f"{request.method} {request.endpoint}: "
                                                 f"{'no rule' if proof is None else proof.kind + ' not proven'}")
