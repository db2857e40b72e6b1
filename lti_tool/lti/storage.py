"""One-time OIDC login records (state + nonce), shared by every worker and machine.

A login writes ``(state, nonce, registration_id)`` with an expiry. The launch reads it by state, and
only when every check has passed *consumes* it atomically: the first consumer wins, any replay of the
same id_token (same nonce) loses, whichever worker it lands on.

Two backends: the database (default; a conditional UPDATE ... WHERE used_at IS NULL) and Redis
(``LTI_TOOL_REDIS_URL``; a Lua compare-and-set).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..models import LoginState


@dataclass(frozen=True)
class LoginRecord:
    state: str
    nonce: str
    registration_id: int
    used: bool


class LoginStore(Protocol):
    """``session`` is the caller's database session: the SQL store works inside the caller's transaction
    (the caller commits), so consuming a nonce and recording the launch commit together."""

    def save(self, session: Session, state: str, nonce: str, registration_id: int, ttl: timedelta) -> None: ...

    def get(self, session: Session, state: str) -> LoginRecord | None: ...

    def consume(self, session: Session, state: str, nonce: str) -> bool: ...

    def purge_expired(self, session: Session) -> int: ...


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SqlLoginStore:
    """Login records in the ``login_states`` table, inside the caller's transaction. Consuming is a
    conditional UPDATE: of two concurrent consumers, the second waits for the first's row lock and then
    finds ``used_at`` set."""

    def save(self, session: Session, state: str, nonce: str, registration_id: int, ttl: timedelta) -> None:
        session.add(LoginState(state=state, nonce=nonce, registration_id=registration_id, expires_at=_now() + ttl))
        session.flush()

    def get(self, session: Session, state: str) -> LoginRecord | None:
        row = session.scalar(select(LoginState).where(LoginState.state == state, LoginState.expires_at > _now()))
        if row is None:
            return None
        return LoginRecord(row.state, row.nonce, row.registration_id, row.used_at is not None)

    def consume(self, session: Session, state: str, nonce: str) -> bool:
        result = session.execute(
            update(LoginState)
            .where(LoginState.state == state, LoginState.nonce == nonce,
                   LoginState.used_at.is_(None), LoginState.expires_at > _now())
            .values(used_at=_now()))
        return result.rowcount == 1

    def purge_expired(self, session: Session) -> int:
        return session.execute(delete(LoginState).where(LoginState.expires_at <= _now())).rowcount


_CONSUME = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record['used'] or record['nonce'] ~= ARGV[1] then return 0 end
record['used'] = true
redis.call('SET', KEYS[1], cjson.encode(record), 'KEEPTTL')
return 1
"""


class RedisLoginStore:
    """Login records as Redis keys with a TTL; consumption is one atomic script."""

    prefix = "lti_tool:login:"

    def __init__(self, client):
        self.client = client
        self._consume = client.register_script(_CONSUME)

    def save(self, session: Session, state: str, nonce: str, registration_id: int, ttl: timedelta) -> None:
        milliseconds = int(ttl.total_seconds() * 1000)
        if milliseconds <= 0:
            return  # already expired: nothing to keep
        record = {"nonce": nonce, "registration_id": registration_id, "used": False}
        if not self.client.set(self.prefix + state, json.dumps(record), px=milliseconds, nx=True):
            raise RuntimeError("login state collision")

    def get(self, session: Session, state: str) -> LoginRecord | None:
        raw = self.client.get(self.prefix + state)
        if raw is None:
            return None
        record = json.loads(raw)
        return LoginRecord(state, record["nonce"], int(record["registration_id"]), bool(record["used"]))

    def consume(self, session: Session, state: str, nonce: str) -> bool:
        return bool(self._consume(keys=[self.prefix + state], args=[nonce]))

    def purge_expired(self, session: Session) -> int:
        return 0  # Redis expires keys itself
