"""The tool's own RSA keys on disk: the first is created on first start (``init_app`` calls ``ensure``), a new one
by ``flask keys rotate``; the published ones are served as JWKS at ``/lti/jwks`` and ``/.well-known/jwks.json``.

Layout of the keys directory::

    <kid>.pem     one private key per kid (PKCS#8 PEM, mode 0600); the kid is the key's RFC 7638 thumbprint
    keys.json     {"current": kid, "retired": {kid: "2026-11-22T10:00:00+00:00", ...}}
    .lock         the file lock writers take (``ensure``, ``rotate``, ``purge``), so many processes may share it

The current key signs, with its kid in the JWT header: the client assertions of the AGS/NRPS token requests
(``service_connector``) and the deep-linking responses (``deep_linking``). A retired key stays published for
the grace period (``KEY_GRACE_DAYS``) so that what it signed can still be verified, and is deleted by the next
rotation (or ``flask keys purge``) once the grace period is over.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto.jwk import JWK

from .. import clock

STATE_FILE = "keys.json"
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class ToolKey:
    kid: str
    private_pem: bytes
    retired_at: datetime | None

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": _b64uint(numbers.n), "e": _b64uint(numbers.e)}


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _new_private_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _kid_of(pem: bytes) -> str:
    """The kid is the key's RFC 7638 thumbprint: stable for the key, whichever process reads it."""
    thumbprint: str = JWK.from_pem(pem).thumbprint()
    return thumbprint


class KeyStore:
    """The keys directory. Safe to use from many processes: writers take a file lock."""

    def __init__(self, directory: str | os.PathLike[str], grace: timedelta = timedelta(days=7)):
        self.directory = Path(directory)
        self.grace = grace

    # -- reading ---------------------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any]:
        path = self.directory / STATE_FILE
        if not path.exists():
            return {}
        state: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return state

    def _load(self, kid: str, retired_at: datetime | None) -> ToolKey:
        if not re.fullmatch(r"[A-Za-z0-9_-]{8,100}", kid):
            raise ValueError(f"bad kid {kid!r} in {self.directory / STATE_FILE}")
        return ToolKey(kid, (self.directory / f"{kid}.pem").read_bytes(), retired_at)

    def current(self) -> ToolKey:
        state = self._read_state()
        if not state.get("current"):
            raise FileNotFoundError(f"no tool key in {self.directory}: start the tool once to create one")
        return self._load(state["current"], None)

    def published(self, now: datetime | None = None) -> list[ToolKey]:
        """The current key and every retired key still inside its grace period."""
        now = now or clock.now()
        state = self._read_state()
        keys = [self.current()] if state.get("current") else []
        for kid, retired in sorted(state.get("retired", {}).items()):
            retired_at = datetime.fromisoformat(retired)
            if retired_at + self.grace > now and (self.directory / f"{kid}.pem").exists():
                keys.append(self._load(kid, retired_at))
        return keys

    def jwks(self, now: datetime | None = None) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.published(now)]}

    # -- writing ---------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write_key(self, kid: str, pem: bytes) -> None:
        path = self.directory / f"{kid}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.directory / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True), "utf-8")
        os.replace(tmp, self.directory / STATE_FILE)

    def ensure(self) -> ToolKey:
        """Create the first key if there is none (first start); return the current key."""
        if self._read_state().get("current"):
            return self.current()
        with self._locked():
            state = self._read_state()
            if not state.get("current"):
                pem = _new_private_pem()
                kid = _kid_of(pem)
                self._write_key(kid, pem)
                self._write_state({"current": kid, "retired": state.get("retired", {})})
        return self.current()

    def rotate(self, now: datetime | None = None) -> tuple[ToolKey, list[str]]:
        """A new key signs from now on; the old one is retired (still published for the grace period).

        Returns the new key and the kids deleted because their grace period was over.
        """
        now = now or clock.now()
        with self._locked():
            state = self._read_state()
            retired = dict(state.get("retired", {}))
            if state.get("current"):
                retired[state["current"]] = now.isoformat()
            pem = _new_private_pem()
            kid = _kid_of(pem)
            self._write_key(kid, pem)
            self._write_state({"current": kid, "retired": retired})
            removed = self._purge_locked(now)
        return self.current(), removed

    def purge(self, now: datetime | None = None) -> list[str]:
        """Delete retired keys whose grace period is over."""
        with self._locked():
            return self._purge_locked(now or clock.now())

    def _purge_locked(self, now: datetime) -> list[str]:
        state = self._read_state()
        retired = dict(state.get("retired", {}))
        removed = [kid for kid, at in retired.items() if datetime.fromisoformat(at) + self.grace <= now]
        for kid in removed:
            (self.directory / f"{kid}.pem").unlink(missing_ok=True)
            del retired[kid]
        if removed:
            self._write_state({"current": state.get("current"), "retired": retired})
        return sorted(removed)
