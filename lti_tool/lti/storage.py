"""One-time OIDC login records (state + nonce), shared by every worker and machine.

A login writes ``(state, nonce, registration_id)`` with an expiry. The launch reads it by state, and
only when every check has passed *consumes* it atomically: the first consumer wins, any replay of the
same id_token (same nonce) loses, whichever worker it lands on.

A record also remembers how the browser is to be bound to it: the platform's storage frame when the login
asked for platform storage (``lti_storage_target``), whether it is a relaunch in a new window, and the login's
routing parameters (to start it again in a new window when neither platform storage nor cookies work).

Two backends: the database (default; a conditional UPDATE ... WHERE used_at IS NULL) and Redis
(``LTI_TOOL_REDIS_URL``; a Lua compare-and-set). When Redis cannot be reached, logins and launches are refused
with ``service_unavailable`` (503): nothing falls back to a store that has not seen the login, so a used nonce
is never accepted again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable, ParamSpec, Protocol, TypeVar, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from ..clock import now
from ..domain.errors import DomainError
from ..models import LoginState

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(frozen=True)
class LoginRecord:
    state: str
    nonce: str
    registration_id: int
    used: bool
    storage_target: str | None = None
    relaunch: bool = False
    params: dict[str, str] = field(default_factory=dict)


class StoreUnavailableError(DomainError):
    """The shared login store cannot be reached: refuse, never guess."""

    code = "service_unavailable"
    status = 503


class LoginStore(Protocol):
    """``session`` is the caller's database session: the SQL store works inside the caller's transaction
    (the caller commits), so consuming a nonce and recording the launch commit together."""

    def save(self, session: Session, state: str, nonce: str, registration_id: int, ttl: timedelta, *,
             storage_target: str | None = None, relaunch: bool = False,
             params: dict[str, str] | None = None) -> None: ...

    def get(self, session: Session, state: str) -> LoginRecord | None: ...

    def consume(self, session: Session, state: str, nonce: str) -> bool: ...

    def purge_expired(self, session: Session) -> int: ...


def _now() -> datetime:
    return now()


class SqlLoginStore:
    """Login records in the ``login_states`` table, inside the caller's transaction. Consuming is a
    conditional UPDATE: of two concurrent consumers, the second waits for the first's row lock and then
    finds ``used_at`` set."""

    def save(self, session: Session, state: str, nonce: str, registration_id: int, ttl: timedelta, *,
             storage_target: str | None = None, relaunch: bool = False,
             params: dict[str, str] | None = None) -> None:
        session.add(LoginState(state=state, nonce=nonce, registration_id=registration_id, expires_at=_now() + ttl,
                               storage_target=storage_target, relaunch=relaunch, login_params=params or None))
        session.flush()

    def get(self, session: Session, state: str) -> LoginRecord | None:
        row = session.scalar(select(LoginState).where(LoginState.state == state, LoginState.expires_at > _now()))
        if row is None:
            return None
        return LoginRecord(row.state, row.nonce, row.registration_id, row.used_at is not None,
                           row.storage_target, bool(row.relaunch), dict(row.login_params or {}))

    def consume(self, session: Session, state: str, nonce: str) -> bool:
        result = _cursor(session.execute(
            update(LoginState)
            .where(LoginState.state == state, LoginState.nonce == nonce,
                   LoginState.used_at.is_(None), LoginState.expires_at > _now())
            .values(used_at=_now())))
        return result.rowcount == 1

    def purge_expired(self, session: Session) -> int:
        return _cursor(session.execute(delete(LoginState).where(LoginState.expires_at <= _now()))).rowcount


def _cursor(result: Any) -> CursorResult[Any]:
    """An UPDATE or DELETE executes to a ``CursorResult`` (it has ``rowcount``); SQLAlchemy's stubs type
    ``Session.execute`` as returning a plain ``Result`` for any statement."""
    return cast(CursorResult[Any], result)


_CONSUME = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record['used'] or record['nonce'] ~= ARGV[1] then return 0 end
record['used'] = true
redis.call('SET', KEYS[1], cjson.encode(record), 'KEEPTTL')
return 1
"""


def _redis_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """A Redis outage becomes a clean 503 refusal (``service_unavailable``), never a 500 or a guess."""

    @wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        from redis.exceptions import RedisError

        try:
            return method(*args, **kwargs)
        except RedisError as exc:
            log.warning("login store unavailable: %s", exc.__class__.__name__)
            raise StoreUnavailableError(f"Redis login store unavailable: {exc.__class__.__name__}") from exc

    return wrapper


class RedisLoginStore:
    """Login records as Redis keys with a TTL; consumption is one atomic script."""

    prefix = "lti_tool:login:"

    def __init__(self, client: redis.Redis):
        self.client = client
        self._consume = client.register_script(_CONSUME)

    @_redis_errors
    def save(self, session: Session, state: str, nonce: str, registration_id: int, ttl: timedelta, *,
             storage_target: str | None = None, relaunch: bool = False,
             params: dict[str, str] | None = None) -> None:
        milliseconds = int(ttl.total_seconds() * 1000)
        if milliseconds <= 0:
            return  # already expired: nothing to keep
        record = {"nonce": nonce, "registration_id": registration_id, "used": False,
                  "storage_target": storage_target, "relaunch": relaunch, "params": params or {}}
        if not self.client.set(self.prefix + state, json.dumps(record), px=milliseconds, nx=True):
            raise RuntimeError("login state collision")

    @_redis_errors
    def get(self, session: Session, state: str) -> LoginRecord | None:
        raw = self.client.get(self.prefix + state)
        if raw is None:
            return None
        record = json.loads(raw)
        return LoginRecord(state, record["nonce"], int(record["registration_id"]), bool(record["used"]),
                           record.get("storage_target"), bool(record.get("relaunch")), record.get("params") or {})

    @_redis_errors
    def consume(self, session: Session, state: str, nonce: str) -> bool:
        return bool(self._consume(keys=[self.prefix + state], args=[nonce]))

    def purge_expired(self, session: Session) -> int:
        return 0  # Redis expires keys itself
