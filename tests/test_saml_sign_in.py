"""Skolfederation sign-in (SAML 2.0 Web SSO, pysaml2): real signed responses made by the sandbox IdP, every
refusal of a response that must not sign anyone in, and Skolverket's school unit register (parsing, cache,
an unreachable register). No test reaches the internet: the register is faked with ``responses``."""

from __future__ import annotations

import base64
import json
import re
import shutil
import stat
from datetime import timedelta
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from saml2.sigver import SigverError, get_xmlsec_binary
from sqlalchemy import select, update

from lti_tool import clock
from lti_tool.db import get_session, new_session
from lti_tool.identity import (OWNER_COUNTY, OWNER_INDEPENDENT, OWNER_MUNICIPALITY, OWNER_OTHER, SignInError, saml,
                               school_units)
from lti_tool.models import IdentityProvider, SchoolUnit, SignInRequest
from lti_tool.sandbox import idp_saml
from lti_tool.services import identity as providers

try:
    get_xmlsec_binary(saml.XMLSEC_PATHS)
except SigverError:  # pragma: no cover - CI installs it
    pytest.skip("xmlsec1 is not installed (Debian package xmlsec1): pysaml2 needs it to sign and verify SAML",
                allow_module_level=True)

BASE_URL = "http://localhost"
PUBLIC_REGISTER = "https://api.skolverket.se/skolenhetsregistret/v2/school-units"
SANDBOX_REGISTER = BASE_URL + idp_saml.REGISTER_PATH
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


# -- fixtures ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def saml_keys_template(tmp_path_factory):
    """The SP's, the sandbox IdP's and another IdP's keys, made once per session (RSA takes a while)."""
    folder = tmp_path_factory.mktemp("saml-keys")
    saml.ensure_key_and_certificate(folder / saml.SP_KEYS_FOLDER, "localhost")
    saml.ensure_key_and_certificate(folder / idp_saml.KEYS_FOLDER, "Sandbox Skolfederation IdP")
    saml.ensure_key_and_certificate(folder / "other-idp", "Another IdP")
    return folder


@pytest.fixture
def config(config, saml_keys_template):
    shutil.copytree(saml_keys_template, config["KEYS_DIR"], dirs_exist_ok=True)
    return config


@pytest.fixture
def provider_id(app):
    with app.app_context():
        session = new_session(app)
        provider = idp_saml.ensure_sandbox_saml_provider(session, BASE_URL)
        session.commit()
        provider_id = provider.id
        session.close()
    return provider_id


@pytest.fixture
def register(app):
    """The school unit register faked: the sandbox copy's answers, served through ``responses``."""
    app.config["SCHOOL_UNIT_REGISTER_URL"] = PUBLIC_REGISTER
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, re.compile(re.escape(PUBLIC_REGISTER) + r"/\d+"),
                          callback=lambda request: _register_callback(request.url))
        yield mock


def _register_callback(url: str):
    status, payload = idp_saml.register_answer(url.rsplit("/", 1)[-1])
    return status, {"Content-Type": "application/json"}, json.dumps(payload)


class Flow:
    """start -> the sandbox IdP -> finish, each step callable on its own so a test can meddle in between."""

    def __init__(self, app, provider_id: int):
        self.app = app
        self.provider_id = provider_id
        self.idp = idp_saml.get_idp(app)

    def start(self, *, idp_entity_id: str | None = None, relay_state: str = "/my") -> dict[str, str]:
        with self.app.test_request_context():
            session = get_session()
            response = saml.start(session, session.get(IdentityProvider, self.provider_id),
                                  idp_entity_id=idp_entity_id, relay_state=relay_state)
            session.commit()
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == self.idp.sso_url
        return {name: values[0] for name, values in parse_qs(location.query).items()}

    def arguments(self, query: dict[str, str]) -> dict:
        with self.app.app_context():
            session = new_session(self.app)
            try:
                return self.idp.read_request(self.idp.server(session), query)
            finally:
                session.close()

    def response(self, query: dict[str, str], person: str = "boras-pupil", **overrides) -> str:
        """The sandbox IdP's signed answer to the request (XML); ``overrides`` go to ``response_xml``."""
        arguments = self.arguments(query)
        values = {"in_response_to": arguments["in_response_to"], "destination": arguments["destination"],
                  "sp_entity_id": arguments["sp_entity_id"]}
        values.update(overrides)
        with self.app.app_context():
            session = new_session(self.app)
            try:
                return self.idp.response_xml(self.idp.server(session), idp_saml.PEOPLE_BY_KEY[person], **values)
            finally:
                session.close()

    def finish(self, xml_or_form, relay_state: str = "/my"):
        form = xml_or_form if isinstance(xml_or_form, dict) else {"SAMLResponse": idp_saml.encode(xml_or_form),
                                                                   "RelayState": relay_state}
        with self.app.test_request_context():
            session = get_session()
            try:
                result = saml.finish(session, session.get(IdentityProvider, self.provider_id), form)
            except Exception:
                session.rollback()
                raise
            session.commit()
            return result

    def refused(self, xml_or_form) -> str:
        with pytest.raises(SignInError) as refusal:
            self.finish(xml_or_form)
        return refusal.value.code


@pytest.fixture
def flow(app, provider_id, register):
    return Flow(app, provider_id)


# -- the service provider ---------------------------------------------------------------------------------------

def test_sp_metadata_names_entity_acs_certificate_and_attributes(app, provider_id):
    with app.app_context():
        session = new_session(app)
        provider = session.get(IdentityProvider, provider_id)
        metadata = saml.sp_metadata(provider)
        assert saml.sp_entity_id(provider) == BASE_URL + "/sign-in/saml/sandbox"
        session.close()
        cert = Path(app.config["KEYS_DIR"], saml.SP_KEYS_FOLDER, saml.CERT_FILE).read_text()
    assert f'entityID="{BASE_URL}/sign-in/saml/sandbox"' in metadata
    acs = re.search(r"<[^>]*AssertionConsumerService [^>]*>", metadata).group(0)
    assert f'Location="{BASE_URL}/sign-in/{provider_id}/acs"' in acs
    assert 'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"' in acs
    body = "".join(line for line in cert.splitlines() if "CERTIFICATE" not in line)
    assert body in metadata
    assert 'use="signing"' in metadata
    assert 'AuthnRequestsSigned="true"' in metadata
    assert "urn:oid:1.3.6.1.4.1.5923.1.1.1.6" in metadata  # eduPersonPrincipalName, asked for
    assert "urn:oid:1.2.752.194.10.2.4" in metadata  # sisSchoolUnitCode
    assert "urn:oid:1.3.6.1.4.1.2428.90.1.5" not in metadata  # norEduPersonNIN: never asked for
    assert "urn:oid:1.3.6.1.4.1.25178.1.2.15" not in metadata  # schacPersonalUniqueID: never asked for


def test_keys_are_made_on_first_use_and_kept(tmp_path):
    key_file, cert_file = saml.ensure_key_and_certificate(tmp_path / "saml-sp", "localhost")
    assert stat.S_IMODE(Path(key_file).stat().st_mode) == 0o600
    assert "BEGIN CERTIFICATE" in Path(cert_file).read_text()
    made = Path(key_file).read_bytes(), Path(cert_file).read_bytes()
    assert saml.ensure_key_and_certificate(tmp_path / "saml-sp", "localhost") == (key_file, cert_file)
    assert (Path(key_file).read_bytes(), Path(cert_file).read_bytes()) == made  # kept, not made again


def test_sandbox_provider_is_added_once_and_follows_the_idp_metadata(app, provider_id):
    with app.app_context():
        session = new_session(app)
        again = idp_saml.ensure_sandbox_saml_provider(session, BASE_URL)
        assert again.id == provider_id
        assert again.profile == "skolfederation" and again.country == "SE" and again.protocol == "saml"
        assert again.registration.issuer == idp_saml.get_idp(app).entity_id
        again.metadata_xml = "<stale/>"
        session.flush()
        assert idp_saml.ensure_sandbox_saml_provider(session, BASE_URL).metadata_xml == \
            idp_saml.get_idp(app).metadata()
        session.close()


def test_list_idps_sorts_a_federation_by_swedish_name(app, provider_id):
    with app.app_context():
        session = new_session(app)
        provider = session.get(IdentityProvider, provider_id)
        assert saml.list_idps(provider) == [(idp_saml.get_idp(app).entity_id, "Sandbox Skolfederation")]
        provider.metadata_xml = _federation(app, [("https://idp.orebro.test/idp", "Örebro kommun"),
                                                  ("https://idp.are.test/idp", "Åre kommun"),
                                                  ("https://idp.zeta.test/idp", "Zeta skolor"),
                                                  ("https://idp.boras.test/idp", "Borås Stad")])
        assert [name for _entity_id, name in saml.list_idps(provider)] == \
            ["Borås Stad", "Zeta skolor", "Åre kommun", "Örebro kommun"]
        with pytest.raises(SignInError) as refusal:
            with app.test_request_context():
                saml.start(session, provider, idp_entity_id=None, relay_state="/my")
        assert refusal.value.code == "signin_invalid" and refusal.value.status == 400
        with pytest.raises(SignInError):
            with app.test_request_context():
                saml.start(session, provider, idp_entity_id="https://idp.nowhere.test/idp", relay_state="/my")
        session.close()


class OtherIdP(idp_saml.SandboxSamlIdP):
    """Another IdP: its own entity id and its own key, otherwise the sandbox IdP (it knows the tool's SP)."""

    def __init__(self, app, entity_id: str):
        super().__init__(BASE_URL, app.config["KEYS_DIR"], tool_base_url=BASE_URL)
        self.other_entity_id = entity_id

    @property
    def entity_id(self) -> str:
        return self.other_entity_id

    def key_files(self) -> tuple[str, str]:
        return saml.ensure_key_and_certificate(Path(self.keys_dir, "other-idp"), "Another IdP")

    def server(self, session):
        rows = session.scalars(select(IdentityProvider).order_by(IdentityProvider.id))
        return idp_saml._server(self._config([saml.sp_metadata(row) for row in rows]))


def _idp_descriptor(app, entity_id: str, name: str) -> str:
    """The metadata of another IdP (its own key), as a federation lists it."""
    return OtherIdP(app, entity_id).metadata().replace("Sandbox Skolfederation", name)


def _federation(app, idps: list[tuple[str, str]], *, with_sandbox: bool = False) -> str:
    parts = [_idp_descriptor(app, entity_id, name) for entity_id, name in idps]
    if with_sandbox:
        parts.insert(0, idp_saml.get_idp(app).metadata())
    return ('<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" Name="urn:test:federation">'
            + "".join(parts) + "</md:EntitiesDescriptor>")


# -- starting ---------------------------------------------------------------------------------------------------

def test_start_sends_a_signed_request_and_records_it(app, flow):
    query = flow.start(relay_state="/join/ABCD-EFGH")
    assert set(query) == {"SAMLRequest", "RelayState", "SigAlg", "Signature"}
    assert query["RelayState"] == "/join/ABCD-EFGH"
    arguments = flow.arguments(query)  # the IdP checks the request's signature against the SP metadata
    assert arguments["destination"] == f"{BASE_URL}/sign-in/{flow.provider_id}/acs"
    with app.app_context():
        session = new_session(app)
        request = session.get(SignInRequest, arguments["in_response_to"])
        assert request is not None and request.provider_id == flow.provider_id and request.used_at is None
        ttl = request.expires_at - request.created_at
        assert ttl == timedelta(seconds=app.config["SIGN_IN_TTL_SECONDS"])
        session.close()


def test_a_tampered_request_signature_is_refused_by_the_idp(flow):
    query = flow.start()
    query["RelayState"] = "/elsewhere"  # the redirect signature covers the RelayState
    with pytest.raises(idp_saml.SandboxSamlError):
        flow.arguments(query)


# -- the happy path ---------------------------------------------------------------------------------------------

def test_pupil_signs_in_through_the_sandbox_pages(app, client, flow):
    query = flow.start(relay_state="/join/ABCD-EFGH")
    page = client.get("/sandbox/idp/saml/sso", query_string=query)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for person in idp_saml.PEOPLE:
        assert f'data-person="{person.key}"' in html
    fields = {name: unescape(value) for name, value in _HIDDEN.findall(html)}
    answer = client.post("/sandbox/idp/saml/respond", data={**fields, "person": "boras-pupil"})
    assert answer.status_code == 200
    posted = answer.get_data(as_text=True)
    assert f'action="{BASE_URL}/sign-in/{flow.provider_id}/acs"' in posted
    nonce = re.search(r"script-src 'self' 'nonce-([^']+)'", answer.headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in posted
    form = {name: unescape(value) for name, value in _HIDDEN.findall(posted)}
    assert form["RelayState"] == "/join/ABCD-EFGH"
    document = base64.b64decode(form["SAMLResponse"]).decode()
    assert document.count("<ds:Signature") + document.count(":Signature ") + document.count(":Signature>") >= 2

    identity, relay_state = flow.finish(form)
    assert relay_state == "/join/ABCD-EFGH"
    assert identity.provider_id == flow.provider_id
    with app.app_context():
        session = new_session(app)
        assert identity.registration_id == session.get(IdentityProvider, flow.provider_id).registration_id
        session.close()
    assert identity.subject == "omar.haddad@boras.sandbox.test"
    assert identity.affiliations == {"student", "member"} and not identity.is_staff
    assert identity.name == "Omar Haddad"
    school = identity.school
    assert school is not None
    assert (school.code, school.name, school.municipality_id) == ("99149001", "Sandboxskolan Borås", "SE-1490")
    assert (school.owner_kind, school.owner_name, school.owner_org_number) == \
        (OWNER_MUNICIPALITY, "BORÅS KOMMUN", "2120009914")


def test_teacher_and_independent_school_and_kiruna(flow):
    teacher, _ = flow.finish(flow.response(flow.start(), "boras-teacher"))
    assert teacher.is_staff and teacher.affiliations == {"employee", "faculty", "member"}
    independent, _ = flow.finish(flow.response(flow.start(), "independent-pupil"))
    assert independent.school.owner_kind == OWNER_INDEPENDENT
    assert independent.school.owner_name == "Viskans Skolor AB" and independent.school.municipality_id == "SE-1490"
    kiruna, _ = flow.finish(flow.response(flow.start(), "kiruna-pupil"))
    assert kiruna.school.municipality_id == "SE-2584" and kiruna.school.owner_kind == OWNER_MUNICIPALITY


def test_a_school_that_releases_no_attributes(flow):
    assert flow.refused(flow.response(flow.start(), "no-attributes")) == "signin_no_attributes"


def test_assertion_signed_or_response_signed_is_enough(flow):
    only_assertion, _ = flow.finish(flow.response(flow.start(), sign_response=False, sign_assertion=True))
    only_response, _ = flow.finish(flow.response(flow.start(), sign_response=True, sign_assertion=False))
    assert only_assertion.subject == only_response.subject == "omar.haddad@boras.sandbox.test"


def test_an_encrypted_assertion_is_decrypted_with_the_sp_key(flow, app):
    arguments = flow.arguments(flow.start())
    cert = Path(app.config["KEYS_DIR"], saml.SP_KEYS_FOLDER, saml.CERT_FILE).read_text()
    with app.app_context():
        session = new_session(app)
        response = idp_saml.get_idp(app).server(session).create_authn_response(
            {"eduPersonPrincipalName": ["saga.persson@are.sandbox.test"]}, arguments["in_response_to"],
            arguments["destination"], arguments["sp_entity_id"], userid="saga",
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_response=True, sign_assertion=True, encrypt_assertion=True, encrypt_cert_assertion=cert)
        session.close()
    xml = str(response)
    assert "EncryptedAssertion" in xml and "saga.persson" not in xml
    identity, _ = flow.finish(xml)
    assert identity.subject == "saga.persson@are.sandbox.test"


def test_name_from_given_name_and_surname_and_no_school(flow):
    identity, _ = flow.finish(flow.response(flow.start(), attributes={
        "eduPersonPrincipalName": ["anna@are.sandbox.test"], "givenName": ["Anna"], "sn": ["Ek"],
        "eduPersonScopedAffiliation": ["student@are.sandbox.test", "staff@evil.test"]}))
    assert identity.name == "Anna Ek"
    assert identity.affiliations == {"student"}  # an affiliation outside the IdP's scopes is dropped
    assert identity.school is None


def test_unknown_school_unit_gives_no_facts(flow):
    identity, _ = flow.finish(flow.response(flow.start(), attributes={
        "eduPersonPrincipalName": ["anna@are.sandbox.test"], "sisSchoolUnitCode": ["12345678"]}))
    assert identity.school is None  # the register does not know it: the cross-check says "unknown"


# -- refusals ---------------------------------------------------------------------------------------------------

def test_tampered_response_is_refused(flow):
    xml = flow.response(flow.start())
    tampered = xml.replace("omar.haddad@boras.sandbox.test", "karin.lind@boras.sandbox.test")
    assert tampered != xml
    assert flow.refused(tampered) == "signin_invalid"
    school_changed = xml.replace("99149001", "99258401")
    assert school_changed != xml
    assert flow.refused(school_changed) == "signin_invalid"


def test_unsigned_response_is_refused(flow):
    assert flow.refused(flow.response(flow.start(), sign_response=False, sign_assertion=False)) == "signin_invalid"


def test_expired_assertion_is_refused(flow, monkeypatch):
    xml = flow.response(flow.start())
    import saml2.time_util

    later = saml2.time_util.utc_now() + 60 * (idp_saml.ASSERTION_MINUTES + 5)
    monkeypatch.setattr(saml2.time_util, "utc_now", lambda: later)
    assert flow.refused(xml) == "signin_expired"


def test_expired_request_is_refused(flow, monkeypatch, app):
    xml = flow.response(flow.start())
    later = clock.now() + timedelta(seconds=app.config["SIGN_IN_TTL_SECONDS"] + 1)
    monkeypatch.setattr(saml, "_now", lambda: later)
    assert flow.refused(xml) == "signin_expired"


def test_replayed_response_is_refused(flow):
    xml = flow.response(flow.start())
    identity, _ = flow.finish(xml)
    assert identity.subject == "omar.haddad@boras.sandbox.test"
    assert flow.refused(xml) == "signin_replayed"


def test_a_lost_race_is_a_replay(flow, monkeypatch):
    """Two posts of one response at once: the one that comes second finds the request used by the first (here
    its update, made just before ours) and is refused by the conditional update."""
    xml = flow.response(flow.start())
    request_id = re.search(r'InResponseTo="([^"]+)"', xml).group(1)
    original = saml._identity

    def used_meanwhile(session, *args, **kwargs):
        identity = original(session, *args, **kwargs)
        session.execute(update(SignInRequest).where(SignInRequest.id == request_id).values(used_at=clock.now())
                        .execution_options(synchronize_session=False))
        return identity

    monkeypatch.setattr(saml, "_identity", used_meanwhile)
    assert flow.refused(xml) == "signin_replayed"


def test_response_for_another_sp_is_refused(flow, app):
    with app.app_context():
        session = new_session(app)
        idp = idp_saml.get_idp(app)
        providers.add_provider(session, profile="skolfederation", name="Another SP", country="SE",
                               issuer=idp.entity_id, client_id="https://other-sp.test/sp", metadata_xml=idp.metadata())
        session.commit()
        session.close()
    query = flow.start()
    xml = flow.response(query, sp_entity_id="https://other-sp.test/sp")  # the audience; our ACS as destination
    assert "https://other-sp.test/sp" in xml
    assert flow.refused(xml) == "signin_invalid"


def test_response_to_another_destination_is_refused(flow):
    xml = flow.response(flow.start(), destination="https://other-sp.test/acs")
    assert flow.refused(xml) == "signin_invalid"


def test_unknown_in_response_to_is_refused(flow):
    xml = flow.response(flow.start(), in_response_to="id-0123456789abcdef-0123456789abcdef")
    assert flow.refused(xml) == "signin_invalid"


def test_unsolicited_response_is_refused(flow):
    xml = flow.response(flow.start(), in_response_to=None)
    assert "InResponseTo" not in xml.split(">", 2)[1]
    assert flow.refused(xml) == "signin_invalid"


def test_response_from_another_idp_of_the_federation_is_refused(flow, app):
    """The request went to the sandbox IdP; another IdP of the same federation answers (correctly signed)."""
    other_id = "https://idp.other.test/idp"
    with app.app_context():
        session = new_session(app)
        provider = session.get(IdentityProvider, flow.provider_id)
        provider.metadata_xml = _federation(app, [(other_id, "Other kommun")], with_sandbox=True)
        session.commit()
        session.close()
    query = flow.start(idp_entity_id=idp_saml.get_idp(app).entity_id)
    arguments = flow.arguments(query)
    other = OtherIdP(app, other_id)
    with app.app_context():
        session = new_session(app)
        xml = other.response_xml(other.server(session), idp_saml.PEOPLE_BY_KEY["boras-pupil"],
                                 in_response_to=arguments["in_response_to"], destination=arguments["destination"],
                                 sp_entity_id=arguments["sp_entity_id"])
        session.close()
    assert f">{other_id}<" in xml
    assert flow.refused(xml) == "signin_invalid"


def test_response_signed_with_a_key_not_in_the_metadata_is_refused(flow, app):
    query = flow.start()
    arguments = flow.arguments(query)
    impostor = OtherIdP(app, idp_saml.get_idp(app).entity_id)  # the right name, the wrong key
    with app.app_context():
        session = new_session(app)
        xml = impostor.response_xml(impostor.server(session), idp_saml.PEOPLE_BY_KEY["boras-pupil"],
                                    in_response_to=arguments["in_response_to"],
                                    destination=arguments["destination"], sp_entity_id=arguments["sp_entity_id"])
        session.close()
    assert flow.refused(xml) == "signin_invalid"


def test_a_user_id_outside_the_idps_scopes_is_refused(flow):
    xml = flow.response(flow.start(), attributes={"eduPersonPrincipalName": ["rektor@another-municipality.se"]})
    assert flow.refused(xml) == "signin_invalid"


def test_an_idp_without_scopes_may_not_speak_for_another_school_owners_users(flow, app):
    """In a federation, an IdP that declares no scope is still refused a user id in another IdP's scope."""
    other_id = "https://idp.noscope.test/idp"
    unscoped = re.sub(r"<(\w+):Scope [^>]*>[^<]*</\1:Scope>", "", _idp_descriptor(app, other_id, "Utan scope AB"))
    assert "Scope" not in unscoped
    with app.app_context():
        session = new_session(app)
        provider = session.get(IdentityProvider, flow.provider_id)
        provider.metadata_xml = ('<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
                                 + idp_saml.get_idp(app).metadata() + unscoped + "</md:EntitiesDescriptor>")
        session.commit()
        session.close()
    other = OtherIdP(app, other_id)

    def answer(eppn: str) -> str:
        arguments = flow.arguments(flow.start(idp_entity_id=other_id))
        with app.app_context():
            session = new_session(app)
            try:
                return other.response_xml(other.server(session), idp_saml.PEOPLE_BY_KEY["boras-pupil"],
                                          in_response_to=arguments["in_response_to"],
                                          destination=arguments["destination"],
                                          sp_entity_id=arguments["sp_entity_id"],
                                          attributes={"eduPersonPrincipalName": [eppn]})
            finally:
                session.close()

    assert flow.refused(answer("omar.haddad@boras.sandbox.test")) == "signin_invalid"
    identity, _ = flow.finish(answer("pupil@noscope.test"))
    assert identity.subject == "pupil@noscope.test"


def test_the_idp_saying_no_is_signin_refused(flow, app):
    from saml2.response import StatusRequestDenied

    arguments = flow.arguments(flow.start())
    with app.app_context():
        session = new_session(app)
        idp = idp_saml.get_idp(app)
        error = idp.server(session).create_error_response(arguments["in_response_to"], arguments["destination"],
                                                          StatusRequestDenied("no"), sign=True)
        session.close()
    assert flow.refused(str(error)) == "signin_refused"


@pytest.mark.parametrize("form", [{}, {"SAMLResponse": "not base64 !"}, {"SAMLResponse": base64.b64encode(b"<x/>")},
                                  {"SAMLResponse": base64.b64encode(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')}])
def test_garbage_is_refused(flow, form):
    form = {name: value.decode() if isinstance(value, bytes) else value for name, value in form.items()}
    assert flow.refused(form) == "signin_invalid"


def test_a_request_of_another_provider_is_not_answered_here(flow, app):
    xml = flow.response(flow.start())
    with app.app_context():
        session = new_session(app)
        other = providers.add_provider(session, profile="saml", name="Other", country="SE", issuer="urn:other",
                                       client_id="urn:other:sp", metadata_xml=_federation(app, []))
        session.commit()
        other_id = other.id
        session.close()
    assert Flow(app, other_id).refused(xml) == "signin_invalid"


# -- the school unit register -----------------------------------------------------------------------------------

KOMMUN = {  # as the register answers (the real shape: the organizer's number only in its link)
    "data": {"type": "schoolunit", "schoolUnitCode": "43038662",
             "attributes": {"displayName": "Färentuna skola", "status": "AKTIV", "municipalityCode": "0125",
                            "schoolTypes": ["GR", "FKLASS"],
                            "addresses": [{"type": "BESOKSADRESS", "streetAddress": "Ölstavägen 5",
                                           "postalCode": "17998", "locality": "Färentuna"}]}},
    "included": {"type": "organizer", "attributes": {"displayName": "EKERÖ KOMMUN", "organizerType": "KOMMUN"},
                 "links": {"href": "https://api.skolverket.se/skolenhetsregistret/v2/organizers/2120000126"}},
    "meta": {"extractDate": "2025-05-08T00:06:10.19+02:00"},
    "links": {"href": "https://api.skolverket.se/skolenhetsregistret/v2/school-units/43038662"},
}


def test_register_answers_are_parsed():
    entry = school_units.parse(KOMMUN, "43038662")
    assert entry == school_units.RegisterEntry(code="43038662", name="Färentuna skola", municipality_id="SE-0125",
                                               owner_name="EKERÖ KOMMUN", owner_org_number="2120000126",
                                               owner_kind=OWNER_MUNICIPALITY)
    region = json.loads(json.dumps(KOMMUN))
    region["data"]["schoolUnitCode"] = "12345678"
    region["data"]["attributes"]["municipalityCode"] = "180"
    region["included"] = {"type": "organizer", "organizationNumber": "232100-0016",
                          "attributes": {"displayName": "Region Gotland", "organizerType": "REGION"}}
    parsed = school_units.parse(region, "12345678")
    assert (parsed.municipality_id, parsed.owner_kind, parsed.owner_org_number) == \
        ("SE-0180", OWNER_COUNTY, "2321000016")
    enskild = json.loads(json.dumps(region))
    enskild["included"] = {"type": "organizer", "attributes": {"displayName": "Skolbolaget AB",
                                                               "organizerType": "ENSKILD",
                                                               "organizationNumber": "165563571248"}}
    assert school_units.parse(enskild, "12345678").owner_org_number == "5563571248"
    assert school_units.parse(enskild, "12345678").owner_kind == OWNER_INDEPENDENT
    enskild["included"]["attributes"]["organizerType"] = "KOMMFORB"
    assert school_units.parse(enskild, "12345678").owner_kind == OWNER_OTHER
    del region["included"]
    bare = school_units.parse(region, "12345678")
    assert (bare.owner_name, bare.owner_org_number, bare.owner_kind) == (None, None, None)
    assert school_units.parse(KOMMUN, "99999999") is None  # the answer of another code
    assert school_units.parse({"data": {}}, "43038662") is None
    assert school_units.parse([], "43038662") is None
    sandbox = school_units.parse(idp_saml.register_answer("99149002")[1], "99149002")
    assert sandbox.owner_kind == OWNER_INDEPENDENT and sandbox.owner_org_number == "5599990001"


def _resolve(app, code):
    with app.test_request_context():
        session = get_session()
        facts = school_units.resolve(session, code)
        session.commit()
        return facts


def test_register_answer_is_cached(app):
    app.config["SCHOOL_UNIT_REGISTER_URL"] = PUBLIC_REGISTER
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{PUBLIC_REGISTER}/43038662", json=KOMMUN)
        first = _resolve(app, "43038662")
        second = _resolve(app, "43038662")
        assert len(mock.calls) == 1
    assert first == second
    assert (first.name, first.municipality_id, first.owner_kind) == ("Färentuna skola", "SE-0125", OWNER_MUNICIPALITY)
    with app.app_context():
        session = new_session(app)
        assert session.get(SchoolUnit, "43038662").owner_org_number == "2120000126"
        session.close()


def test_a_stale_cache_is_fetched_again_and_kept_when_the_register_is_down(app, monkeypatch):
    app.config["SCHOOL_UNIT_REGISTER_URL"] = PUBLIC_REGISTER
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{PUBLIC_REGISTER}/43038662", json=KOMMUN)
        _resolve(app, "43038662")
    later = clock.now() + timedelta(days=app.config["SCHOOL_UNIT_CACHE_DAYS"] + 1)
    monkeypatch.setattr(school_units, "_now", lambda: later)
    renamed = json.loads(json.dumps(KOMMUN))
    renamed["data"]["attributes"]["displayName"] = "Färentuna skola och fritidshem"
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{PUBLIC_REGISTER}/43038662", json=renamed)
        assert _resolve(app, "43038662").name == "Färentuna skola och fritidshem"
    much_later = later + timedelta(days=app.config["SCHOOL_UNIT_CACHE_DAYS"] + 1)
    monkeypatch.setattr(school_units, "_now", lambda: much_later)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{PUBLIC_REGISTER}/43038662", body=ConnectionError("down"))
        assert _resolve(app, "43038662").name == "Färentuna skola och fritidshem"  # the old answer will do


def test_register_unreachable_or_unknown_code_gives_none(app, caplog):
    app.config["SCHOOL_UNIT_REGISTER_URL"] = PUBLIC_REGISTER
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{PUBLIC_REGISTER}/11111111", body=ConnectionError("unreachable"))
        mock.add(responses.GET, f"{PUBLIC_REGISTER}/22222222", status=404,
                 json={"type": "about:blank", "title": "Not Found", "status": 404})
        mock.add(responses.GET, f"{PUBLIC_REGISTER}/33333333", status=503)
        mock.add(responses.GET, f"{PUBLIC_REGISTER}/44444444", body="<html>not json</html>")
        with caplog.at_level("INFO", logger="lti_tool.identity.school_units"):
            assert _resolve(app, "11111111") is None
            assert _resolve(app, "22222222") is None
            assert _resolve(app, "33333333") is None
            assert _resolve(app, "44444444") is None
    assert "not reachable" in caplog.text and "not in the school unit register" in caplog.text
    with app.app_context():
        session = new_session(app)
        assert session.scalars(select(SchoolUnit)).all() == []
        session.close()


def test_not_a_school_unit_code_is_never_asked(app):
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        for code in ("", "1234567", "123456789", "../admin", "1234567a"):
            assert _resolve(app, code) is None


def test_sandbox_register_copy(app, client):
    assert app.config["SCHOOL_UNIT_REGISTER_URL"] == SANDBOX_REGISTER  # the sandbox asks its own copy
    answer = client.get("/sandbox/idp/skolverket/school-units/99258401")
    assert answer.status_code == 200
    entry = school_units.parse(answer.get_json(), "99258401")
    assert (entry.name, entry.municipality_id, entry.owner_kind) == \
        ("Sandboxskolan Kiruna", "SE-2584", OWNER_MUNICIPALITY)
    missing = client.get("/sandbox/idp/skolverket/school-units/12345678")
    assert missing.status_code == 404 and missing.get_json()["status"] == 404


def test_sandbox_idp_metadata_and_refusals(client, app, provider_id):
    metadata = client.get("/sandbox/idp/saml/metadata")
    assert metadata.status_code == 200
    assert metadata.headers["Content-Type"].startswith("application/samlmetadata+xml")
    text = metadata.get_data(as_text=True)
    assert f'entityID="{idp_saml.get_idp(app).entity_id}"' in text
    assert "boras.sandbox.test" in text  # the scopes of its school owners
    assert client.get("/sandbox/idp/saml/sso").status_code == 400
    assert client.get("/sandbox/idp/saml/sso", query_string={"SAMLRequest": "bm9wZQ=="}).status_code == 400
    assert client.post("/sandbox/idp/saml/respond", data={"person": "boras-pupil"}).status_code == 400
