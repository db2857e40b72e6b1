"""Skolfederation (and any SAML 2.0 federation): Web SSO with pysaml2, the tool as the service provider.

- The provider row holds the metadata of one identity provider or of a whole federation
  (``IdentityProvider.metadata_xml``; a federation's metadata holds one IdP per school owner, offered by
  :func:`list_idps`); its registration's ``client_id`` is the tool's SP entity id (:func:`sp_entity_id`), and
  :func:`sp_metadata` is what the federation's registry is given.
- :func:`start` sends the browser to the chosen IdP with an AuthnRequest (HTTP-Redirect binding, signed) and
  records its id in ``sign_in_requests``; :func:`finish` is the assertion consumer service
  (``<BASE_URL>/sign-in/<provider id>/acs``, HTTP-POST binding).
- pysaml2 verifies the answer: the signature of the response or of its assertions by a key of the issuing IdP in
  the metadata (an unsigned or tampered answer is refused), the audience (this SP), the destination (this ACS),
  the time conditions (``ACCEPTED_TIME_DIFF`` of clock skew), and that it answers a request this SP sent
  (``allow_unsolicited`` is off). On top of that, the answer must come from the IdP the request went to, may be
  used once (the request id is marked used with a conditional update: a second post is ``signin_replayed``), and
  the user id must lie in one of the IdP's scopes (``shibmd:Scope`` in the metadata, when it names any).
- The person: ``eduPersonPrincipalName`` is the subject (none released: ``signin_no_attributes``);
  ``eduPersonScopedAffiliation`` gives the affiliations; ``displayName`` (or ``givenName`` and ``sn``) the name,
  which the caller keeps only where a teacher's view needs it; ``sisSchoolUnitCode`` the school, whose
  municipality and owner come from Skolverket's school unit register (:mod:`.school_units`). A national
  identity number (``norEduPersonNIN``, ``schacPersonalUniqueID``) is never asked for and never read.

The SP's own key and self-signed certificate are made on first use under ``<KEYS_DIR>/saml-sp/`` (never
committed). pysaml2 runs Debian's ``xmlsec1`` program for every signature.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import logging
import os
import re
import secrets
import traceback
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import flask
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from defusedxml import ElementTree as SafeElementTree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor, metadata_tostring_fix
from saml2.response import StatusError
from saml2.saml import NAMEID_FORMAT_TRANSIENT
from saml2.sigver import SigverError, get_xmlsec_binary
from saml2.validate import ResponseLifetimeExceed, valid_instance
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256
from sqlalchemy import update
from sqlalchemy.orm import Session

from .. import clock
from ..config import settings
from ..models import IdentityProvider, SignInRequest
from . import SchoolIdentity, SignInError, school_units

log = logging.getLogger(__name__)
# pysaml2 logs whole SAML responses (names, user ids) at DEBUG and INFO: never into the tool's log.

SP_KEYS_FOLDER = "saml-sp"  # under KEYS_DIR: the service provider's key and certificate
KEY_FILE = "key.pem"
CERT_FILE = "cert.pem"
CERT_DAYS = 3650
ACCEPTED_TIME_DIFF = 60  # seconds of clock skew between the IdP and the tool
MAX_RESPONSE_CHARS = 1024 * 1024  # the posted SAMLResponse (base64); a real one is a few kB
ATTRIBUTE_MAPS = Path(__file__).resolve().with_name("attributemaps")
XMLSEC_PATHS = ["/usr/bin", "/usr/local/bin", "/opt/local/bin"]
SP_NAME = "Kulturskola distance courses"
# What the SP metadata asks the federation's IdPs to release: no national identity number, ever.
REQUIRED_ATTRIBUTES = ["eduPersonPrincipalName"]
OPTIONAL_ATTRIBUTES = ["eduPersonScopedAffiliation", "displayName", "givenName", "sn", "sisSchoolUnitCode"]
PROTOCOL_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
SCHOOL_UNIT_CODE = re.compile(r"[0-9]{8}")
AFFILIATION = re.compile(r"[a-z][a-z-]{0,31}")
MAX_SUBJECT = 255
MAX_NAME = 200


def _now() -> datetime:
    return clock.now()


# -- keys ---------------------------------------------------------------------------------------------------

def ensure_key_and_certificate(directory: str | os.PathLike[str], common_name: str) -> tuple[str, str]:
    """``(key file, certificate file)`` in ``directory``: an RSA key (mode 0600) and a self-signed certificate,
    made the first time (SAML trusts the certificate through the metadata, not through a CA). Many processes
    may call this at once: the writer takes a file lock."""
    folder = Path(directory)
    key_path, cert_path = folder / KEY_FILE, folder / CERT_FILE
    if not (key_path.is_file() and cert_path.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not (key_path.is_file() and cert_path.is_file()):
                    key_pem, cert_pem = _new_key_and_certificate(common_name)
                    _write(key_path, key_pem, 0o600)
                    _write(cert_path, cert_pem, 0o644)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    return str(key_path), str(cert_path)


def _new_key_and_certificate(common_name: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (common_name or "saml")[:64])])
    start = datetime.now(timezone.utc) - timedelta(days=1)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start)
                   .not_valid_after(start + timedelta(days=CERT_DAYS)).sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            certificate.public_bytes(serialization.Encoding.PEM))


def _write(path: Path, content: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def sp_key_files() -> tuple[str, str]:
    """The service provider's key and certificate files (made on first use)."""
    host = urlsplit(settings().base_url).hostname or "kulturskola-lti-tool"
    return ensure_key_and_certificate(Path(settings().keys_dir) / SP_KEYS_FOLDER, host)


def xmlsec_binary() -> str:
    """The ``xmlsec1`` program pysaml2 signs and verifies with; without it no SAML sign-in works."""
    try:
        return _find_xmlsec()
    except SigverError as error:
        raise SignInError("xmlsec1 is not installed (Debian: apt-get install xmlsec1)", code="signin_unavailable",
                          status=503) from error


@lru_cache(maxsize=1)
def _find_xmlsec() -> str:
    found: str = get_xmlsec_binary(XMLSEC_PATHS)
    return found


# -- the service provider's configuration -------------------------------------------------------------------

def sp_entity_id(provider: IdentityProvider) -> str:
    """The tool's SAML entity id at this provider: the provider's registration's client id."""
    return provider.registration.client_id


def acs_url(provider: IdentityProvider) -> str:
    return f"{settings().base_url}/sign-in/{provider.id}/acs"


def _config(provider: IdentityProvider, *, with_metadata: bool = True) -> SPConfig:
    metadata_xml = (provider.metadata_xml or "") if with_metadata else ""
    if with_metadata and not metadata_xml.strip():
        raise SignInError(f"identity provider {provider.id} has no SAML metadata", code="signin_unavailable",
                          status=503)
    key_file, cert_file = sp_key_files()
    return _cached_config(sp_entity_id(provider), acs_url(provider), metadata_xml, key_file, cert_file,
                          xmlsec_binary(), settings().base_url)


@lru_cache(maxsize=8)
def _cached_config(entity_id: str, acs: str, metadata_xml: str, key_file: str, cert_file: str, xmlsec: str,
                   base_url: str) -> SPConfig:
    """One SP configuration per provider and metadata (reading a federation's metadata takes a while)."""
    values: dict[str, Any] = {
        "entityid": entity_id,
        "xmlsec_binary": xmlsec,
        "crypto_backend": "xmlsec1",
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "attribute_map_dir": str(ATTRIBUTE_MAPS),
        "allow_unknown_attributes": True,
        "accepted_time_diff": ACCEPTED_TIME_DIFF,
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "organization": {"name": [(SP_NAME, "en")], "display_name": [(SP_NAME, "en")], "url": [(base_url, "en")]},
        "service": {"sp": {
            "name": SP_NAME,
            "endpoints": {"assertion_consumer_service": [(acs, BINDING_HTTP_POST)]},
            "allow_unsolicited": False,
            "authn_requests_signed": True,
            # Identity providers sign the response, the assertion or both (Shibboleth and SimpleSAMLphp differ
            # by default): one of them must carry a valid signature; an unsigned answer is refused.
            "want_response_signed": False,
            "want_assertions_signed": False,
            "want_assertions_or_response_signed": True,
            "name_id_format": [NAMEID_FORMAT_TRANSIENT],
            "required_attributes": REQUIRED_ATTRIBUTES,
            "optional_attributes": OPTIONAL_ATTRIBUTES,
        }},
    }
    if metadata_xml:
        values["metadata"] = {"inline": [metadata_xml]}
    config = SPConfig()
    try:
        config.load(values)
    except Exception as error:  # pysaml2 raises many kinds for metadata it cannot use (broken, expired)
        raise SignInError(f"the SAML metadata cannot be used: {error.__class__.__name__}: {error}",
                          code="signin_unavailable", status=503) from release(error)
    return config


def _client(config: SPConfig) -> Saml2Client:
    """A client per request: pysaml2's keeps what it has seen in memory."""
    return Saml2Client(config=config)


def sp_metadata(provider: IdentityProvider) -> str:
    """The SP's metadata for the federation's registry: entity id, the ACS (HTTP-POST), the signing (and
    encryption) certificate, the attributes asked for."""
    return metadata_of(_config(provider, with_metadata=False))


@lru_cache(maxsize=16)
def metadata_of(config: Any) -> str:
    """The (unsigned) metadata of a pysaml2 entity configuration, an SP's or an IdP's. Made without pysaml2's
    ``create_metadata_string``, which loads the private key it does not need."""
    descriptor = entity_descriptor(config)
    valid_instance(descriptor)
    xml = metadata_tostring_fix(descriptor, {"xs": "http://www.w3.org/2001/XMLSchema"})
    return xml.decode("utf-8") if isinstance(xml, bytes) else str(xml)


# -- the identity providers of the metadata ---------------------------------------------------------------

_SORT = str.maketrans({"å": "z\u0101", "ä": "z\u0102", "æ": "z\u0102", "ö": "z\u0103", "ø": "z\u0103",
                       "é": "e", "è": "e", "ü": "y"})


def list_idps(provider: IdentityProvider) -> list[tuple[str, str]]:
    """``(entity id, display name)`` of every IdP in the provider's metadata (a federation: one per school
    owner), in Swedish alphabetical order of the name, for a school-owner picker."""
    metadata = _config(provider).metadata
    idps = [(entity_id, _display_name(metadata, entity_id)) for entity_id in metadata.identity_providers()]
    return sorted(idps, key=lambda idp: (idp[1].casefold().translate(_SORT), idp[0]))


def _display_name(metadata: Any, entity_id: str) -> str:
    for language in ("sv", "en", None):
        for name in metadata.mdui_uiinfo_display_name(entity_id, langpref=language):
            if name and name.strip():
                return " ".join(name.split())
    for language in ("sv", "en"):
        name = metadata.name(entity_id, language)
        if name and name.strip():
            return " ".join(name.split())
    return entity_id


# -- the request --------------------------------------------------------------------------------------------

def _issuer_tag(entity_id: str) -> str:
    return hashlib.sha256(entity_id.encode("utf-8")).hexdigest()[:16]


def _new_request_id(idp_entity_id: str) -> str:
    """``id-<random>-<tag of the IdP>``: the answer must come from the IdP the request went to."""
    return f"id-{secrets.token_hex(16)}-{_issuer_tag(idp_entity_id)}"


def start(session: Session, provider: IdentityProvider, *, idp_entity_id: str | None,
          relay_state: str) -> flask.Response:
    """Send the browser to the IdP with a signed AuthnRequest (HTTP-Redirect binding) and record the request
    (``sign_in_requests``, answerable for ``SIGN_IN_TTL_SECONDS``; the caller commits). ``idp_entity_id`` may be
    None when the metadata holds exactly one IdP. ``relay_state`` comes back with the answer, unchanged (SAML
    limits it to 80 bytes)."""
    config = _config(provider)
    idps = config.metadata.identity_providers()
    if idp_entity_id is None:
        if len(idps) != 1:
            raise SignInError(f"identity provider {provider.id} has {len(idps)} IdPs: one must be chosen",
                              code="signin_invalid", status=400)
        idp_entity_id = idps[0]
    elif idp_entity_id not in idps:
        raise SignInError(f"{idp_entity_id!r} is not an IdP of identity provider {provider.id}",
                          code="signin_invalid", status=400)
    request_id = _new_request_id(idp_entity_id)
    try:
        _sent_id, info = _client(config).prepare_for_authenticate(
            entityid=idp_entity_id, relay_state=relay_state, binding=BINDING_HTTP_REDIRECT, message_id=request_id)
        location = dict(info["headers"])["Location"]
    except Exception as error:  # no HTTP-Redirect single sign-on service in the IdP's metadata, ...
        raise SignInError(f"no AuthnRequest for {idp_entity_id}: {error.__class__.__name__}: {error}",
                          code="signin_unavailable", status=503) from release(error)
    now = _now()
    session.add(SignInRequest(id=request_id, provider_id=provider.id, created_at=now,
                              expires_at=now + timedelta(seconds=settings().sign_in_ttl_seconds)))
    session.flush()
    response = flask.redirect(location, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the answer ---------------------------------------------------------------------------------------------

def _invalid(detail: str) -> SignInError:
    return SignInError(detail, code="signin_invalid")


def _answered_request(encoded: str) -> str:
    """The InResponseTo of a posted response, read before anything is trusted (only to find the request)."""
    if not encoded or len(encoded) > MAX_RESPONSE_CHARS:
        raise _invalid("no SAMLResponse, or one too large")
    try:
        document = base64.b64decode(encoded)
        root = SafeElementTree.fromstring(document)
    except (binascii.Error, ValueError, SafeElementTree.ParseError) as error:
        raise _invalid(f"the SAMLResponse is not base64-encoded XML: {error}") from error
    except Exception as error:  # defusedxml refuses entities and DTDs
        raise _invalid(f"the SAMLResponse is refused: {error.__class__.__name__}") from error
    if root.tag != f"{{{PROTOCOL_NS}}}Response":
        raise _invalid(f"not a SAML Response: {root.tag}")
    request_id = (root.get("InResponseTo") or "").strip()
    if not request_id:
        raise _invalid("an unsolicited response (no InResponseTo)")
    return request_id


def finish(session: Session, provider: IdentityProvider, form: Mapping[str, str]) -> tuple[SchoolIdentity, str]:
    """The assertion consumer service (HTTP-POST binding): the verified person and the RelayState (which the
    caller must treat as untrusted). The request is marked used (the caller commits). Refusals:
    ``signin_invalid`` (any check failed: signature missing or wrong, tampered, audience, destination, issuer,
    unknown or no InResponseTo), ``signin_expired`` (the request or the assertion is too old),
    ``signin_replayed``, ``signin_refused`` (the IdP said no), ``signin_no_attributes``."""
    encoded = str(form.get("SAMLResponse") or "")
    relay_state = str(form.get("RelayState") or "")
    request_id = _answered_request(encoded)
    request = session.get(SignInRequest, request_id) if len(request_id) <= 100 else None
    if request is None or request.provider_id != provider.id:
        raise _invalid(f"InResponseTo {request_id[:100]!r} names no request of identity provider {provider.id}")
    now = _now()
    if request.used_at is not None:
        raise SignInError(f"request {request_id} was answered already", code="signin_replayed")
    if request.expires_at <= now:
        raise SignInError(f"request {request_id} expired at {request.expires_at.isoformat()}",
                          code="signin_expired")
    config = _config(provider)
    response = _verified(config, encoded, request_id, relay_state)
    identity = _identity(session, provider, config, response.ava or {}, _issuer(response, request_id))
    # Last (the school unit register is asked above, before this write): once only, even when two posts race.
    used = session.execute(update(SignInRequest).where(
        SignInRequest.id == request_id, SignInRequest.provider_id == provider.id, SignInRequest.used_at.is_(None),
        SignInRequest.expires_at > now).values(used_at=now).execution_options(synchronize_session=False))
    if used.rowcount != 1:
        raise SignInError(f"request {request_id} was answered already", code="signin_replayed")
    return identity, relay_state


def release(error: BaseException) -> BaseException:
    """Let go of what pysaml2's frames held when it raised (open temporary files of certificates and
    documents): the exception, its traceback and the frames' locals would otherwise wait for the garbage
    collector, which then closes those files with a ResourceWarning."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__
    return error


def _verified(config: SPConfig, encoded: str, request_id: str, relay_state: str) -> Any:
    """pysaml2's AuthnResponse, every check passed."""
    try:
        response = _client(config).parse_authn_request_response(encoded, BINDING_HTTP_POST,
                                                                 outstanding={request_id: relay_state})
    except ResponseLifetimeExceed as error:
        raise SignInError(f"the assertion is too old: {error}", code="signin_expired") from release(error)
    except StatusError as error:
        raise SignInError(f"the IdP refused: {error}", code="signin_refused") from release(error)
    except Exception as error:  # pysaml2 raises many kinds (some plain Exception): every one is a refusal
        raise _invalid(f"the SAML response failed a check: {error.__class__.__name__}: {error}") \
            from release(error)
    # pysaml2 returns the response without an assertion when the destination or the issue instant is wrong.
    if response is None or getattr(response, "assertion", None) is None:
        raise _invalid("the SAML response failed a check (destination or issue instant)")
    return response


def _issuer(response: Any, request_id: str) -> str:
    """The IdP that answered: the one the request was sent to (its tag is in the request id)."""
    assertion_issuer = response.assertion.issuer
    response_issuer = response.response.issuer
    issuer = (assertion_issuer.text or "").strip() if assertion_issuer is not None else ""
    outer = (response_issuer.text or "").strip() if response_issuer is not None else ""
    if not issuer or (outer and outer != issuer) or _issuer_tag(issuer) != request_id.rsplit("-", 1)[-1]:
        raise _invalid(f"answered by {issuer or outer or 'no issuer'}, not by the IdP the request was sent to")
    return issuer


# -- the person ---------------------------------------------------------------------------------------------

def _values(ava: Mapping[str, Any], name: str) -> list[str]:
    values = ava.get(name) or []
    if isinstance(values, str):
        values = [values]
    return [str(value).strip() for value in values if value is not None and str(value).strip()]


def _scopes(config: SPConfig, issuer: str) -> list[dict[str, Any]]:
    return list(config.metadata.shibmd_scopes(issuer, typ="idpsso_descriptor"))


@lru_cache(maxsize=8)
def _scope_owners(config: SPConfig) -> dict[str, frozenset[str]]:
    """Every literal scope of the metadata and the IdPs that declare it."""
    owners: dict[str, set[str]] = {}
    for entity_id in config.metadata.identity_providers():
        for scope in _scopes(config, entity_id):
            if not scope.get("regexp") and isinstance(scope.get("text"), str):
                owners.setdefault(scope["text"].strip().casefold(), set()).add(entity_id)
    return {scope: frozenset(entities) for scope, entities in owners.items()}


def _may_assert(config: SPConfig, issuer: str, scope: str, scopes: list[dict[str, Any]]) -> bool:
    """An IdP asserts user ids in its own scopes; one that declares none, in any scope no other IdP of the
    metadata declares (a school owner's IdP never speaks for another's users)."""
    if scopes:
        return _in_scope(scope, scopes)
    owners = _scope_owners(config).get(scope.casefold())
    if owners and issuer not in owners:
        return False
    log.warning("SAML IdP %s declares no scope: the user id's scope %r is not checked", issuer, scope)
    return True


def _in_scope(scope: str, scopes: Iterable[dict[str, Any]]) -> bool:
    """Is ``scope`` one the IdP may assert (any, when the metadata names none)?"""
    scopes = list(scopes)
    if not scopes:
        return True
    for allowed in scopes:
        text = allowed.get("text")
        if allowed.get("regexp") and text is not None and hasattr(text, "fullmatch"):
            if text.fullmatch(scope):
                return True
        elif isinstance(text, str) and text.strip().casefold() == scope.casefold():
            return True
    return False


def _affiliations(ava: Mapping[str, Any], scopes: list[dict[str, Any]]) -> frozenset[str]:
    found = set()
    for value in _values(ava, "eduPersonScopedAffiliation"):
        affiliation, at, scope = value.partition("@")
        if at and _in_scope(scope, scopes):
            found.add(affiliation.strip().lower())
    for value in _values(ava, "eduPersonAffiliation"):
        found.add(value.lower())
    return frozenset(value for value in found if AFFILIATION.fullmatch(value))


def _name(ava: Mapping[str, Any]) -> str | None:
    names = _values(ava, "displayName")
    name = names[0] if names else " ".join(_values(ava, "givenName")[:1] + _values(ava, "sn")[:1])
    name = " ".join(name.split())
    return name[:MAX_NAME] or None


def _school_unit_code(ava: Mapping[str, Any]) -> str | None:
    """The school unit code: ``sisSchoolUnitCode``, else (older Skolfederation profile) an 8-digit
    ``norEduOrgUnitUniqueIdentifier``."""
    for name in ("sisSchoolUnitCode", "norEduOrgUnitUniqueIdentifier"):
        for value in _values(ava, name):
            if SCHOOL_UNIT_CODE.fullmatch(value):
                return value
    return None


def _identity(session: Session, provider: IdentityProvider, config: SPConfig, ava: Mapping[str, Any],
              issuer: str) -> SchoolIdentity:
    """The person of a verified assertion. Only these attributes are read: never a national identity number."""
    subjects = _values(ava, "eduPersonPrincipalName")
    if not subjects:
        raise SignInError(f"{issuer} released no eduPersonPrincipalName", code="signin_no_attributes")
    subject = subjects[0]
    user, at, scope = subject.rpartition("@")
    scopes = _scopes(config, issuer)
    if not user or not at or len(subject) > MAX_SUBJECT or not _may_assert(config, issuer, scope, scopes):
        raise _invalid(f"{issuer} may not assert the user id {subject[:MAX_SUBJECT]!r} (scope {scope!r})")
    code = _school_unit_code(ava)
    return SchoolIdentity(provider_id=provider.id, registration_id=provider.registration_id, subject=subject,
                          name=_name(ava), affiliations=_affiliations(ava, scopes),
                          school=school_units.resolve(session, code) if code else None)
