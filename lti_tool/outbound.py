"""The outbound-request guard: every URL the tool fetches on someone else's say-so goes through here.

Platforms name the URLs the tool fetches (openid-configuration, registration endpoint, JWKS, token, AGS and
NRPS endpoints), and so does the catalog feed's configuration. Anyone can open ``/lti/register`` with any
URL. So nothing fetches with a bare HTTP client: ``session(policy)`` gives a ``requests.Session`` that

- takes nothing from the environment (no proxies, no ``.netrc``; a CA bundle named by ``REQUESTS_CA_BUNDLE``
  is still used) and keeps no cookies;
- refuses, before anything is sent and again on every redirect hop: a scheme other than https (http too
  outside production), a URL with userinfo (``user@host``), an IP-literal host that is not allowed, a
  ``localhost`` name;
- resolves the host itself when it connects, refuses the request when *any* address of the answer is
  loopback, private, link-local (the cloud metadata address 169.254.169.254 among them), multicast,
  reserved or unspecified (IPv4-mapped, 6to4 and NAT64 IPv6 addresses are judged by the IPv4 address in
  them), and connects the socket to the address it checked: a DNS answer that changes between two lookups
  (DNS rebinding) cannot slip a refused address in. TLS still verifies the certificate for the host name;
- follows at most ``max_redirects`` redirects, for GET only (a token or registration POST is never replayed
  to another host), dropping ``Authorization`` when the origin changes;
- reads at most ``max_bytes`` of the (decoded) body and gives up at a total deadline, however slowly the
  server drips its headers or body (a watchdog shuts the socket down);
- raises one error, ``OutboundError``, whatever went wrong. Callers map it to one code of their own, so a
  page never tells a refused address from one that does not answer or answers something else; ``reason``
  (for the log, and for national staff's catalog history) says why.

Private addresses are allowed only by ``OUTBOUND_ALLOW_PRIVATE`` (development with the sandbox platform on
localhost, and the tests); link-local, multicast and unspecified addresses never are.

This module imports neither Flask nor the web or service layers: ``OutboundPolicy.from_settings`` reads the
app's settings where the caller has them. Without a policy, ``STRICT`` applies (https, public addresses).
"""

from __future__ import annotations

import contextvars
import heapq
import ipaddress
import itertools
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import allowed_gai_family

log = logging.getLogger(__name__)

Response = requests.Response  # what a guarded request returns, body already read

DEFAULT_MAX_BYTES = 1024 * 1024  # an openid-configuration or a JWKS is a few kB
DEFAULT_DEADLINE_SECONDS = 30.0
DEFAULT_TIMEOUT_SECONDS = 10.0  # connect and read, when the caller gives none
DEFAULT_MAX_REDIRECTS = 3
MAX_ADDRESSES = 8  # of one DNS answer, tried in turn

# OutboundError.kind
REFUSED = "refused"  # the policy refused the URL or an address: nothing was sent
TIMEOUT = "timeout"  # connect or read timeout, or the total deadline
TOO_LARGE = "too_large"  # the body is larger than allowed
FAILED = "failed"  # no connection, a broken answer, too many redirects, ...

getaddrinfo = socket.getaddrinfo  # the resolver; tests replace it here


class OutboundError(Exception):
    """A guarded request failed. Callers show one neutral code whatever ``kind`` is; ``reason`` and ``str()``
    are for the log."""

    def __init__(self, url: str, reason: str, kind: str = FAILED):
        super().__init__(f"{_loggable(url)}: {reason}")
        self.url = url
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class OutboundPolicy:
    allow_private: bool = False  # loopback, private and reserved addresses (never link-local or multicast)
    allow_http: bool = False  # plain http besides https
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS  # one request, redirects and body included
    max_redirects: int = DEFAULT_MAX_REDIRECTS

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "OutboundPolicy":
        """The app's settings (``OUTBOUND_ALLOW_PRIVATE``, ``OUTBOUND_DEADLINE_SECONDS``; http only outside
        production). Settings that do not say are read strictly: no private addresses, production."""
        return cls(allow_private=settings.get("OUTBOUND_ALLOW_PRIVATE") is True,
                   allow_http=settings.get("ENV", "production") != "production",
                   deadline_seconds=float(settings.get("OUTBOUND_DEADLINE_SECONDS") or DEFAULT_DEADLINE_SECONDS))


STRICT = OutboundPolicy()


def session(policy: OutboundPolicy | None = None) -> "OutboundSession":
    """A guarded session (``STRICT`` unless a policy is given). Close it, or use it in a ``with`` block."""
    return OutboundSession(policy or STRICT)


# -- addresses and URLs -----------------------------------------------------------------------------------

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool) -> str | None:
    """Why the tool must not connect to ``address`` (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_refusal(embedded, allow_private)
    if address.is_unspecified or address.is_multicast:
        return f"{address} is an unspecified or multicast address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if allow_private:
        return None
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    if address.is_loopback or address.is_private or address.is_reserved or site_local or not address.is_global:
        return f"{address} is a loopback, private or reserved address"
    return None


def url_refusal(url: str, policy: OutboundPolicy) -> str | None:
    """Why ``url`` must not be fetched, from the URL alone (None: on to the connection, which checks the
    addresses its host resolves to)."""
    try:
        parts = urlsplit(url)
        if parts.port == 0:  # reading the port raises for one that is not a number
            return "port 0"
    except ValueError:
        return "not a URL"
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        return f"scheme {scheme or '(none)'} is not allowed"
    if "@" in parts.netloc:
        return "a URL with userinfo"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "no host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not policy.allow_private and (host == "localhost" or host.endswith(".localhost")):
            return f"{host} is a loopback name"
        return None
    return address_refusal(address, policy.allow_private)


def _loggable(url: str) -> str:
    """Scheme, host, port and path: no userinfo, no query."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return f"{parts.scheme}://{netloc}{parts.path}"
    except ValueError:
        return "(not a URL)"


# -- the total deadline -----------------------------------------------------------------------------------

class _Deadline:
    """One guarded request's deadline. Each connection it uses registers a duplicate of its socket; at the
    deadline the watchdog shuts those sockets down, which ends any read blocked on them."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._finished = False
        self._lock = threading.Lock()
        self._watched: dict[int, socket.socket] = {}

    def watch(self, owner: object, sock: socket.socket) -> None:
        try:
            duplicate = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            return
        with self._lock:
            if self._finished:
                duplicate.close()
                return
            old = self._watched.pop(id(owner), None)
            if old is not None:
                old.close()
            self._watched[id(owner)] = duplicate
            if self.expired:
                _shut(duplicate)

    def expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for duplicate in self._watched.values():
                _shut(duplicate)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
            for duplicate in self._watched.values():
                duplicate.close()
            self._watched.clear()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """One thread per process expiring deadlines in time order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: _Deadline) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbound-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        deadline = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            deadline.expire()


_WATCHDOG = _Watchdog()
_CURRENT_DEADLINE: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar("outbound_deadline",
                                                                                     default=None)


def _after_fork() -> None:
    global _WATCHDOG
    _WATCHDOG = _Watchdog()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


# -- connections that resolve and check their own addresses -----------------------------------------------

def _connect(sock: socket.socket, sockaddr: tuple) -> None:
    """Connect to the checked address (tests wrap this to see where the guard connects)."""
    sock.connect(sockaddr)


def _addresses(host: str, port: int, allow_private: bool) -> list[tuple]:
    """The host's addresses, all of them checked; one refused address refuses the request."""
    infos = getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"no address for {host}")
    for _family, _type, _proto, _name, sockaddr in infos:
        try:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        except ValueError:
            raise OutboundError(f"//{host}", f"{host} resolved to {sockaddr[0]!r}", REFUSED) from None
        refusal = address_refusal(address, allow_private)
        if refusal:
            raise OutboundError(f"//{host}", f"refused: {host} resolved to {refusal}", REFUSED)
    return infos[:MAX_ADDRESSES]


class _GuardedConnectionMixin:
    allow_private = False

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")  # type: ignore[attr-defined]
        try:
            infos = _addresses(host, self.port, self.allow_private)  # type: ignore[attr-defined]
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(host, self, exc) from exc  # type: ignore[arg-type]
        except OSError as exc:
            raise urllib3.exceptions.NewConnectionError(  # type: ignore[arg-type]
                self, f"Failed to resolve {host}: {exc}") from exc
        deadline = _CURRENT_DEADLINE.get()
        timeout = self.timeout  # type: ignore[attr-defined]
        error: OSError | None = None
        if not isinstance(timeout, (int, float)):
            timeout = DEFAULT_TIMEOUT_SECONDS
        for family, socktype, proto, _name, sockaddr in infos:
            sock = None
            try:
                sock = socket.socket(family, socktype, proto)
                for option in self.socket_options or ():  # type: ignore[attr-defined]
                    sock.setsockopt(*option)
                remaining = deadline.at - time.monotonic() if deadline is not None else timeout
                if remaining <= 0:
                    raise TimeoutError("deadline")
                sock.settimeout(min(timeout, remaining))  # a connect is not ended by the watchdog: bounded here
                if self.source_address:  # type: ignore[attr-defined]
                    sock.bind(self.source_address)  # type: ignore[attr-defined]
                if deadline is not None:
                    deadline.watch(self, sock)
                _connect(sock, sockaddr)
                sock.settimeout(timeout)
                sys.audit("http.client.connect", self, self.host, self.port)  # type: ignore[attr-defined]
                return sock
            except OSError as exc:
                error = exc
                if sock is not None:
                    sock.close()
        if isinstance(error, TimeoutError):
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"Connection to {host} timed out. (connect timeout={timeout})") from error
        raise urllib3.exceptions.NewConnectionError(  # type: ignore[arg-type]
            self, f"Failed to establish a new connection: {error}") from error

    def request(self, method, url, body=None, headers=None, **kwargs):  # type: ignore[no-untyped-def]
        deadline = _CURRENT_DEADLINE.get()
        if deadline is not None and self.sock is not None:  # type: ignore[attr-defined]
            deadline.watch(self, self.sock)  # type: ignore[attr-defined]  # a kept-alive connection
        return super().request(method, url, body, headers, **kwargs)  # type: ignore[misc]


@lru_cache(maxsize=None)
def _pool_classes(allow_private: bool) -> dict[str, type]:
    attributes = {"allow_private": allow_private}
    http = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attributes)
    https = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attributes)
    return {"http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https})}


class _GuardedAdapter(HTTPAdapter):
    """Checks every request it sends (first request and each redirect hop), then sends it over guarded
    connections, never through a proxy."""

    def __init__(self, policy: OutboundPolicy):
        self.policy = policy
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.policy.allow_private)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None,  # type: ignore[no-untyped-def]
             proxies=None):
        refusal = url_refusal(request.url or "", self.policy)
        if refusal:
            raise OutboundError(request.url or "", f"refused: {refusal}", REFUSED)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=None)


class _NoCookies(DefaultCookiePolicy):
    def set_ok(self, cookie, request):  # type: ignore[no-untyped-def]
        return False

    def return_ok(self, cookie, request):  # type: ignore[no-untyped-def]
        return False


_FOLLOWED = frozenset({"GET", "HEAD"})


class OutboundSession(requests.Session):
    """A ``requests.Session`` whose every request goes through the guard; ``request`` (and so ``get``,
    ``post``) take ``max_bytes`` and ``deadline`` besides requests' own arguments, and return the response
    with its body read (or raise ``OutboundError``)."""

    def __init__(self, policy: OutboundPolicy):
        super().__init__()
        self.policy = policy
        self.trust_env = False
        self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.max_redirects = policy.max_redirects
        self.cookies.set_policy(_NoCookies())
        adapter = _GuardedAdapter(policy)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    if TYPE_CHECKING:
        # requests' ``get`` and ``post`` hand every keyword to ``request``; its stubs list only requests' own.
        def get(self, url: str | bytes, **kwargs: Any) -> Response: ...

        def post(self, url: str | bytes, data: Any = None, json: Any = None, **kwargs: Any) -> Response: ...

    def request(self, method, url, *args, max_bytes: int = DEFAULT_MAX_BYTES,  # type: ignore[override]
                deadline: float | None = None, allow_redirects: bool = True, **kwargs) -> Response:
        if args:
            raise TypeError("pass OutboundSession.request's arguments by name")
        kwargs.pop("stream", None)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = DEFAULT_TIMEOUT_SECONDS
        limit = _Deadline(self.policy.deadline_seconds if deadline is None else deadline)
        token = _CURRENT_DEADLINE.set(limit)
        _WATCHDOG.add(limit)
        current = str(url)
        try:
            follow = allow_redirects and str(method).upper() in _FOLLOWED
            for _hop in range(self.policy.max_redirects + 1):
                refusal = url_refusal(current, self.policy)  # checked again by the adapter as it sends
                if refusal:
                    raise OutboundError(current, f"refused: {refusal}", REFUSED)
                response = super().request(method, current, allow_redirects=False, stream=True, **kwargs)
                target = self.get_redirect_target(response) if follow else None
                if target is None:
                    break
                response.close()
                following = requote_uri(urljoin(response.url, target))
                if self.should_strip_auth(current, following) and kwargs.get("headers"):
                    kwargs["headers"] = {k: v for k, v in kwargs["headers"].items() if k.lower() != "authorization"}
                current = following
            else:
                raise OutboundError(str(url), f"more than {self.policy.max_redirects} redirects")
            try:
                _read_body(response, current, max_bytes, limit)
            finally:
                response.close()
            return response
        except OutboundError as error:
            if limit.expired and error.kind != REFUSED:
                raise OutboundError(current, f"timed out (deadline of {limit.seconds:g} s)", TIMEOUT) from error
            raise OutboundError(current, error.reason, error.kind) from error.__cause__
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as error:
            if limit.expired:
                raise OutboundError(current, f"timed out (deadline of {limit.seconds:g} s)", TIMEOUT) from error
            timed_out = isinstance(error, requests.Timeout) or "timed out" in str(error).lower()
            raise OutboundError(current, f"{error.__class__.__name__}: {error}", TIMEOUT if timed_out else FAILED) \
                from error
        finally:
            limit.finish()
            _CURRENT_DEADLINE.reset(token)


def _read_body(response: Response, url: str, max_bytes: int, limit: _Deadline) -> None:
    """The whole body, decoded, at most ``max_bytes``, into the response (``.content``, ``.json()``)."""
    length = response.headers.get("Content-Length", "")
    if length.isascii() and length.isdigit() and int(length) > max_bytes:
        raise OutboundError(url, f"larger than {max_bytes} bytes", TOO_LARGE)
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > max_bytes:
            raise OutboundError(url, f"larger than {max_bytes} bytes", TOO_LARGE)
        if limit.expired:
            raise OutboundError(url, f"timed out (deadline of {limit.seconds:g} s)", TIMEOUT)
        chunks.append(chunk)
    if limit.expired:  # the watchdog's shutdown may look like the end of the headers or of a body
        raise OutboundError(url, f"timed out (deadline of {limit.seconds:g} s)", TIMEOUT)
    response._content = b"".join(chunks)
    response._content_consumed = True


__all__ = ["DEFAULT_MAX_BYTES", "FAILED", "REFUSED", "STRICT", "TIMEOUT", "TOO_LARGE", "OutboundError",
           "OutboundPolicy", "OutboundSession", "Response", "address_refusal", "session", "url_refusal"]
