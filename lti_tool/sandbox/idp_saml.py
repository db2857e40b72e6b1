"""The sandbox SAML identity provider ("Sandbox Skolfederation") and a sandbox copy of Skolverket's school unit
register, for development, the demo and the test suite; never in production (``views.init_app`` registers them
only while the sandbox is on).

Served on the sandbox's base URL:

- ``/sandbox/idp/saml/metadata``: the IdP's metadata (its entity id, its signing certificate, its single
  sign-on service with the HTTP-Redirect binding, the scopes of its school owners);
- ``/sandbox/idp/saml/sso``: takes an AuthnRequest (HTTP-Redirect binding, its signature checked against the
  tool's SP metadata) and shows the test people; picking one posts to ``/sandbox/idp/saml/respond``, which
  answers with a signed SAML Response (response and assertion signed) in an auto-submitting form to the SP's
  assertion consumer service (HTTP-POST binding), with the RelayState;
- ``/sandbox/idp/skolverket/school-units/<code>``: the demo's school units in the shape of Skolenhetsregistret
  v2 (404 with a problem document for any other code). While the sandbox is on and ``SCHOOL_UNIT_REGISTER_URL``
  is empty or the public register, the tool asks this copy (the demo works offline). It never touches the
  database: the tool asks it from inside its own request.

The test people are pupils and a teacher of the demo's Swedish municipalities (Kiruna SE-2584, Borås SE-1490,
Åre SE-2321), a pupil of an independent school in Borås owned by a company, and a pupil whose school releases no
attributes at all. The IdP's key and certificate are made on first use under ``<keys dir>/sandbox-idp-saml/``.
:func:`ensure_sandbox_saml_provider` adds the IdP to the tool as an identity provider (profile
``skolfederation``). The IdP knows the SP metadata of every tool provider that names it as issuer.
"""

from __future__ import annotations

import base64
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from cryptography.utils import CryptographyDeprecationWarning
from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAME_FORMAT_URI, NAMEID_FORMAT_TRANSIENT
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..config import DEFAULTS, settings
from ..db import get_session
from ..identity import saml
from ..models import REGISTRATION_KIND_SCHOOL, IdentityProvider, Registration
from ..services import identity as providers

with warnings.catch_warnings():
    # pysaml2 7.5's IdP module imports cryptography's CFB cipher mode from its old place, which cryptography
    # warns about on import; nothing here uses it.
    warnings.filterwarnings("ignore", message="CFB has been moved", category=CryptographyDeprecationWarning)
    from saml2.server import Server

bp = Blueprint("sandbox_idp_saml", __name__, url_prefix="/sandbox/idp")
PATH = "/sandbox/idp/saml"
REGISTER_PATH = "/sandbox/idp/skolverket/school-units"
EXTENSION_KEY = "lti_tool.sandbox.idp_saml"
KEYS_FOLDER = "sandbox-idp-saml"
PROVIDER_NAME = "Sandbox Skolfederation"
SP_PATH = "/sign-in/saml/sandbox"  # the tool's SP entity id at the sandbox IdP, on the tool's base URL
ASSERTION_MINUTES = 5
PUBLIC_REGISTER = DEFAULTS["SCHOOL_UNIT_REGISTER_URL"]


class SandboxSamlError(ValueError):
    """The sandbox IdP refuses an AuthnRequest (as a real IdP would)."""


# -- the demo's school units and people ---------------------------------------------------------------------

@dataclass(frozen=True)
class SchoolUnitEntry:
    code: str
    name: str
    municipality_code: str  # 4 digits
    locality: str
    owner_name: str
    owner_org_number: str
    owner_type: str  # as the register has it: KOMMUN, ENSKILD, ...


KIRUNA_SCHOOL = SchoolUnitEntry("99258401", "Sandboxskolan Kiruna", "2584", "Kiruna", "KIRUNA KOMMUN",
                                "2120009925", "KOMMUN")
BORAS_SCHOOL = SchoolUnitEntry("99149001", "Sandboxskolan Borås", "1490", "Borås", "BORÅS KOMMUN", "2120009914",
                               "KOMMUN")
ARE_SCHOOL = SchoolUnitEntry("99232101", "Sandboxskolan Åre", "2321", "Järpen", "ÅRE KOMMUN", "2120009923",
                             "KOMMUN")
INDEPENDENT_SCHOOL = SchoolUnitEntry("99149002", "Friskolan Viskan (sandbox)", "1490", "Borås",
                                     "Viskans Skolor AB", "5599990001", "ENSKILD")
SCHOOL_UNITS = {unit.code: unit for unit in (KIRUNA_SCHOOL, BORAS_SCHOOL, ARE_SCHOOL, INDEPENDENT_SCHOOL)}


@dataclass(frozen=True)
class SandboxPerson:
    key: str
    label: str  # on the picking page
    attributes: Mapping[str, tuple[str, ...]]  # what the IdP releases (friendly names)


def _person(key: str, label: str, eppn: str | None, name: str, affiliations: tuple[str, ...],
            school: SchoolUnitEntry | None) -> SandboxPerson:
    if eppn is None:
        return SandboxPerson(key, label, {})
    scope = eppn.partition("@")[2]
    attributes: dict[str, tuple[str, ...]] = {
        "eduPersonPrincipalName": (eppn,), "displayName": (name,),
        "eduPersonScopedAffiliation": tuple(f"{affiliation}@{scope}" for affiliation in affiliations)}
    if school is not None:
        attributes["sisSchoolUnitCode"] = (school.code,)
    return SandboxPerson(key, label, attributes)


PEOPLE = (
    _person("kiruna-pupil", "Elsa Nilsson, pupil at Sandboxskolan Kiruna (Kiruna SE-2584)",
            "elsa.nilsson@kiruna.sandbox.test", "Elsa Nilsson", ("student", "member"), KIRUNA_SCHOOL),
    _person("boras-pupil", "Omar Haddad, pupil at Sandboxskolan Borås (Borås SE-1490)",
            "omar.haddad@boras.sandbox.test", "Omar Haddad", ("student", "member"), BORAS_SCHOOL),
    _person("are-pupil", "Saga Persson, pupil at Sandboxskolan Åre (Åre SE-2321)",
            "saga.persson@are.sandbox.test", "Saga Persson", ("student", "member"), ARE_SCHOOL),
    _person("boras-teacher", "Karin Lind, teacher at Sandboxskolan Borås (Borås SE-1490)",
            "karin.lind@boras.sandbox.test", "Karin Lind", ("employee", "faculty", "member"), BORAS_SCHOOL),
    _person("independent-pupil", "Leo Berg, pupil at Friskolan Viskan, an independent school in Borås "
            "(owner: Viskans Skolor AB)", "leo.berg@viskan.sandbox.test", "Leo Berg", ("student", "member"),
            INDEPENDENT_SCHOOL),
    _person("no-attributes", "A pupil whose school releases no attributes", None, "", (), None),
)
PEOPLE_BY_KEY = {person.key: person for person in PEOPLE}
SCOPES = ("kiruna.sandbox.test", "boras.sandbox.test", "are.sandbox.test", "viskan.sandbox.test")


# -- the register's copy ------------------------------------------------------------------------------------

def register_answer(code: str, base_url: str = "") -> tuple[int, dict[str, Any]]:
    """(status, JSON) of the register for ``code``, as Skolenhetsregistret v2 answers: the school unit with its
    organizer in ``included``; 404 with a problem document for a code it does not know."""
    unit = SCHOOL_UNITS.get(code)
    if unit is None:
        return 404, {"type": "about:blank", "title": "Not Found", "status": 404,
                     "detail": "Angiven resurs hittades inte"}
    register = f"{base_url.rstrip('/')}{REGISTER_PATH}" if base_url else PUBLIC_REGISTER
    organizers = register.rsplit("/", 1)[0] + "/organizers"
    return 200, {
        "links": {"href": f"{register}/{code}"},
        "meta": {"extractDate": "2027-01-15T00:05:00+01:00", "created": "2015-07-01", "modified": "2026-08-20"},
        "data": {"type": "schoolunit", "schoolUnitCode": code, "attributes": {
            "displayName": unit.name, "status": "AKTIV", "schoolUnitType": "SKOLENHET",
            "municipalityCode": unit.municipality_code, "schoolTypes": ["FKLASS", "GR"],
            "schoolTypeProperties": {"gr": {"grades": [str(grade) for grade in range(1, 10)]}},
            "addresses": [{"type": "BESOKSADRESS", "streetAddress": "Skolvägen 1", "postalCode": "99999",
                           "locality": unit.locality}],
            "specialSupportSchool": False, "hospitalSchool": False}},
        "included": {"type": "organizer", "organizationNumber": unit.owner_org_number,
                     "attributes": {"displayName": unit.owner_name, "organizerType": unit.owner_type},
                     "links": {"href": f"{organizers}/{unit.owner_org_number}"}},
    }


# -- the IdP ------------------------------------------------------------------------------------------------

class SandboxSamlIdP:
    """The IdP of one app: its entity id and endpoints on the sandbox's base URL, its key under the keys
    directory, and the SP metadata of the tool providers that name it (read from the database when asked)."""

    def __init__(self, base_url: str, keys_dir: str | Path, *, tool_base_url: str):
        self.base_url = base_url.rstrip("/")
        self.keys_dir = Path(keys_dir)
        self.tool_base_url = tool_base_url.rstrip("/")

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}{PATH}/metadata"

    @property
    def sso_url(self) -> str:
        return f"{self.base_url}{PATH}/sso"

    @property
    def register_url(self) -> str:
        return f"{self.base_url}{REGISTER_PATH}"

    @property
    def sp_entity_id(self) -> str:
        return f"{self.tool_base_url}{SP_PATH}"

    def key_files(self) -> tuple[str, str]:
        return saml.ensure_key_and_certificate(self.keys_dir / KEYS_FOLDER, "Sandbox Skolfederation IdP")

    def _config(self, sp_metadata: list[str]) -> IdPConfig:
        return _idp_config(self.entity_id, self.sso_url, self.base_url, *self.key_files(), tuple(sp_metadata))

    def metadata(self) -> str:
        """The IdP's metadata (what the tool's provider row holds)."""
        return saml.metadata_of(self._config([]))

    def server(self, session: Session) -> Server:
        """pysaml2's IdP, knowing the SP metadata of every tool provider whose issuer is this IdP."""
        rows = session.scalars(select(IdentityProvider).join(Registration,
                                                             Registration.id == IdentityProvider.registration_id)
                               .where(Registration.kind == REGISTRATION_KIND_SCHOOL,
                                      Registration.issuer == self.entity_id).order_by(IdentityProvider.id))
        return _server(self._config([saml.sp_metadata(row) for row in rows]))

    def read_request(self, server: Server, values: Mapping[str, str]) -> Any:
        """The AuthnRequest of an HTTP-Redirect (``SAMLRequest``, ``RelayState``, ``SigAlg``, ``Signature``),
        its signature checked; :class:`SandboxSamlError` when it is not one this IdP answers."""
        if not values.get("SAMLRequest"):
            raise SandboxSamlError("no SAMLRequest")
        try:
            parsed = server.parse_authn_request(values["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                relay_state=values.get("RelayState"), sigalg=values.get("SigAlg"),
                                                signature=values.get("Signature"))
            arguments = server.response_args(parsed.message)
        except Exception as error:  # an unknown SP, a bad signature, a broken request: pysaml2 raises many kinds
            raise SandboxSamlError(f"AuthnRequest refused: {error.__class__.__name__}: {error}") \
                from saml.release(error)
        if parsed is None or not arguments.get("destination"):
            raise SandboxSamlError("AuthnRequest refused: no assertion consumer service for this SP")
        return arguments

    def response_xml(self, server: Server, person: SandboxPerson, *, in_response_to: str | None, destination: str,
                     sp_entity_id: str, sign_response: bool = True, sign_assertion: bool = True,
                     attributes: Mapping[str, Any] | None = None) -> str:
        """A SAML Response for ``person`` (or for ``attributes`` instead of theirs), signed as asked. Tests use
        this to make answers that must be refused (unsigned, for another SP, unsolicited)."""
        identity = {name: list(values) for name, values in (attributes if attributes is not None
                                                              else person.attributes).items()}
        response = server.create_authn_response(
            identity, in_response_to, destination, sp_entity_id, userid=person.key,
            authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_auth": self.entity_id},
            sign_response=sign_response, sign_assertion=sign_assertion)
        return str(response)

    def answer(self, session: Session, values: Mapping[str, str], person_key: str) -> tuple[str, dict[str, str]]:
        """(the SP's ACS, the form fields to post there) for the person picked for an AuthnRequest."""
        person = PEOPLE_BY_KEY.get(person_key)
        if person is None:
            raise SandboxSamlError(f"no test person {person_key!r}")
        server = self.server(session)
        arguments = self.read_request(server, values)
        xml = self.response_xml(server, person, in_response_to=arguments["in_response_to"],
                                destination=arguments["destination"], sp_entity_id=arguments["sp_entity_id"])
        fields = {"SAMLResponse": encode(xml)}
        if values.get("RelayState"):
            fields["RelayState"] = values["RelayState"]
        return arguments["destination"], fields


@lru_cache(maxsize=8)
def _idp_config(entity_id: str, sso_url: str, base_url: str, key_file: str, cert_file: str,
                sp_metadata: tuple[str, ...]) -> IdPConfig:
    """The IdP's pysaml2 configuration (kept: the tests and the demo ask for it on every step)."""
    values: dict[str, Any] = {
        "entityid": entity_id,
        "xmlsec_binary": saml.xmlsec_binary(),
        "crypto_backend": "xmlsec1",
        "key_file": key_file,
        "cert_file": cert_file,
        "attribute_map_dir": str(saml.ATTRIBUTE_MAPS),
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "organization": {"name": [(PROVIDER_NAME, "sv")], "display_name": [(PROVIDER_NAME, "sv")],
                         "url": [(base_url, "sv")]},
        "service": {"idp": {
            "name": PROVIDER_NAME,
            "scope": list(SCOPES),
            "endpoints": {"single_sign_on_service": [(sso_url, BINDING_HTTP_REDIRECT)]},
            "want_authn_requests_signed": True,
            "name_id_format": [NAMEID_FORMAT_TRANSIENT],
            "policy": {"default": {"lifetime": {"minutes": ASSERTION_MINUTES}, "attribute_restrictions": None,
                                   "name_form": NAME_FORMAT_URI, "fail_on_missing_requested": False}},
        }},
    }
    if sp_metadata:
        values["metadata"] = {"inline": list(sp_metadata)}
    config = IdPConfig()
    config.load(values)
    return config


@lru_cache(maxsize=8)
def _server(config: IdPConfig) -> Server:
    """pysaml2's IdP of a configuration (kept: making one reads the private key)."""
    return Server(config=config)


def encode(xml: str) -> str:
    """A response as the HTTP-POST binding carries it."""
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


def get_idp(app: Flask | None = None) -> SandboxSamlIdP:
    idp: SandboxSamlIdP = (app or current_app).extensions[EXTENSION_KEY]
    return idp


# -- the tool's identity provider row -----------------------------------------------------------------------

def ensure_sandbox_saml_provider(session: Session, base_url: str) -> IdentityProvider:
    """The sandbox IdP as one of the tool's identity providers (profile ``skolfederation``, country SE), added
    once; ``base_url``: the sandbox's base URL (``settings().sandbox_base_url``), where the IdP is served. The
    tool's SP entity id is ``<BASE_URL>/sign-in/saml/sandbox``. The metadata follows the IdP's (a new key)."""
    idp = SandboxSamlIdP(base_url, settings().keys_dir, tool_base_url=settings().base_url)
    metadata = idp.metadata()
    registration_id = session.scalar(select(Registration.id).where(Registration.kind == REGISTRATION_KIND_SCHOOL,
                                                                   Registration.issuer == idp.entity_id,
                                                                   Registration.client_id == idp.sp_entity_id))
    if registration_id is not None:
        provider = providers.provider_of_registration(session, registration_id)
        if provider is not None:
            if provider.metadata_xml != metadata:
                provider.metadata_xml, provider.metadata_fetched_at = metadata, clock.now()
                session.flush()
            return provider
    provider = providers.add_provider(session, profile="skolfederation", name=PROVIDER_NAME, country="SE",
                                      issuer=idp.entity_id, client_id=idp.sp_entity_id, metadata_xml=metadata)
    provider.metadata_fetched_at = clock.now()
    session.flush()
    return provider


# -- the pages ----------------------------------------------------------------------------------------------

def _refused(error: SandboxSamlError):
    return render_template("sandbox/auth_error.html", message=str(error)), 400


@bp.route("/saml/metadata")
def metadata():
    return get_idp().metadata(), 200, {"Content-Type": "application/samlmetadata+xml; charset=utf-8"}


_REQUEST_FIELDS = ("SAMLRequest", "RelayState", "SigAlg", "Signature")


@bp.route("/saml/sso")
def sso():
    """Single sign-on (HTTP-Redirect binding): the test people to sign in as."""
    values = {name: request.args[name] for name in _REQUEST_FIELDS if request.args.get(name)}
    try:
        arguments = get_idp().read_request(get_idp().server(get_session()), values)
    except SandboxSamlError as error:
        return _refused(error)
    return render_template("sandbox/idp_saml_people.html", people=PEOPLE, fields=values,
                           sp_entity_id=arguments["sp_entity_id"], destination=arguments["destination"])


@bp.route("/saml/respond", methods=["POST"])
def respond():
    """The picked person: a signed SAML Response, posted by the browser to the SP (HTTP-POST binding)."""
    values = {name: request.form[name] for name in _REQUEST_FIELDS if request.form.get(name)}
    try:
        action, fields = get_idp().answer(get_session(), values, request.form.get("person", ""))
    except SandboxSamlError as error:
        return _refused(error)
    return render_template("sandbox/form_post.html", action=action, fields=fields)


@bp.route("/skolverket/school-units/<code>")
def school_unit(code: str):
    """The sandbox copy of Skolenhetsregistret v2 (no database: the tool asks it from inside its own request)."""
    status, payload = register_answer(code, get_idp().base_url)
    response = jsonify(payload)
    response.status_code = status
    if status != 200:
        response.content_type = "application/problem+json"
    return response


def make(app: Flask) -> None:
    """Make the app's sandbox SAML IdP on the sandbox's current address; the tool then asks the sandbox copy of
    the school unit register unless another register is configured."""
    config = settings(app)
    before = app.extensions.get(EXTENSION_KEY)
    idp = SandboxSamlIdP(config.sandbox_base_url, config.keys_dir, tool_base_url=config.base_url)
    app.extensions[EXTENSION_KEY] = idp
    register = app.config.get("SCHOOL_UNIT_REGISTER_URL")
    if register in (None, "", PUBLIC_REGISTER) or (before is not None and register == before.register_url):
        app.config["SCHOOL_UNIT_REGISTER_URL"] = idp.register_url




__all__ = ["ARE_SCHOOL", "BORAS_SCHOOL", "INDEPENDENT_SCHOOL", "KIRUNA_SCHOOL", "PEOPLE", "PEOPLE_BY_KEY",
           "PROVIDER_NAME", "SCHOOL_UNITS", "SCOPES", "SandboxSamlError", "SandboxSamlIdP", "SchoolUnitEntry",
           "Server", "SandboxPerson", "bp", "encode", "ensure_sandbox_saml_provider", "get_idp", "make",
           "register_answer"]
