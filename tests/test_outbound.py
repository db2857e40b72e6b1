"""The outbound-request guard (lti_tool/outbound.py): refused addresses and URLs, redirects to them, DNS answers
that change, size and time limits, one neutral error on /lti/register, and that nothing fetches around it."""

from __future__ import annotations

import ast
import http.server
import ipaddress
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
import responses

from lti_tool import outbound
from lti_tool.config import ConfigurationError, load_settings
from lti_tool.outbound import OutboundError, OutboundPolicy

from .conftest import error_code

DEVELOPMENT = OutboundPolicy(allow_http=True)  # http allowed, private addresses not
LOCAL = OutboundPolicy(allow_http=True, allow_private=True)  # the sandbox and the tests
PRODUCTION = OutboundPolicy.from_settings({"ENV": "production", "OUTBOUND_ALLOW_PRIVATE": False})
PUBLIC_IP = "93.184.215.14"  # a global address; the fake internet below serves it from 127.0.0.1


class Server:
    """A real HTTP server on 127.0.0.1 that counts the requests it gets; ``routes`` maps a path to
    (status, headers, body)."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]):
        self.routes = routes
        self.paths: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # connections kept alive

            def do_GET(self):  # noqa: N802
                server.paths.append(self.path)
                status, headers, body = server.routes.get(self.path, (404, {}, b"{}"))
                if headers.get("Content-Length") == "":
                    self.close_connection = True  # the body ends when the connection closes
                self.send_response(status)
                for name, value in headers.items():
                    if value:  # an empty value: the header is left out (Content-Length: the body ends at close)
                        self.send_header(name, value)
                if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server():
    made = []

    def make(routes=None):
        made.append(Server(routes or {"/": (200, {"Content-Type": "application/json"}, b'{"ok": true}')}))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture
def dns(monkeypatch):
    """The guard's resolver answers from ``answers``: host -> list of answers, one per lookup (the last one
    repeats). ``asked`` lists the lookups."""
    answers: dict[str, list[list[str]]] = {}
    asked: list[str] = []
    real = outbound.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        if host not in answers:
            return real(host, port, family, type, proto, flags)
        asked.append(host)
        queue = answers[host]
        ips = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)) if ":" in ip
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

    monkeypatch.setattr(outbound, "getaddrinfo", getaddrinfo)
    return answers, asked


@pytest.fixture
def internet(monkeypatch):
    """Where the guard connects its sockets (every address it connects to is recorded). There is no internet
    here, so a connection to ``PUBLIC_IP`` reaches the same port on 127.0.0.1 instead."""
    connected: list[str] = []
    real = outbound._connect

    def connect(sock, sockaddr):
        connected.append(sockaddr[0])
        real(sock, ("127.0.0.1", sockaddr[1]) if sockaddr[0] == PUBLIC_IP else sockaddr)

    monkeypatch.setattr(outbound, "_connect", connect)
    return connected


def get(policy, url, **kwargs):
    with outbound.session(policy) as http:
        return http.get(url, timeout=2, **kwargs)


# -- (1) refused addresses and URLs: nothing is sent, nothing even connects ------------------------------------

@pytest.mark.parametrize("template", [
    "http://127.0.0.1:{port}/",
    "http://127.1.2.3:{port}/",
    "http://10.0.0.7:{port}/",
    "http://192.168.1.1:{port}/",
    "http://172.16.0.1:{port}/",
    "http://100.64.0.1:{port}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0:{port}/",
    "http://2130706433:{port}/",  # 127.0.0.1 as one number: refused when resolved
    "http://0177.0.0.1:{port}/",  # and in octal
    "http://[::1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "http://[64:ff9b::7f00:1]:{port}/",
    "http://[2002:7f00:1::]:{port}/",
    "http://[fd00::1]:{port}/",
    "http://[fe80::1]:{port}/",
    "http://localhost:{port}/",
    "http://LOCALHOST.:{port}/",
    "http://user:secret@platform.example/",
    "http://platform.example@127.0.0.1:{port}/",
    "ftp://platform.example/",
    "file:///etc/passwd",
])
def test_a_refused_url_is_never_connected_to(template, server, dns, internet):
    local = server()
    _answers, asked = dns
    with pytest.raises(OutboundError) as caught:
        get(DEVELOPMENT, template.format(port=local.port))
    assert caught.value.kind == outbound.REFUSED
    assert asked == [] and internet == [] and local.paths == []


def test_http_is_refused_in_production_and_https_is_not(dns, internet):
    assert outbound.url_refusal("http://platform.example/jwks", PRODUCTION) == "scheme http is not allowed"
    assert outbound.url_refusal("https://platform.example/jwks", PRODUCTION) is None
    assert PRODUCTION == outbound.STRICT
    with pytest.raises(OutboundError) as caught:
        get(PRODUCTION, "http://platform.example/jwks")
    assert caught.value.kind == outbound.REFUSED and internet == [] and dns[1] == []


@pytest.mark.parametrize("address, private_allowed, refused", [
    ("8.8.8.8", False, False),
    ("2001:4860:4860::8888", False, False),
    ("::ffff:8.8.8.8", False, False),
    ("127.0.0.1", False, True),
    ("127.0.0.1", True, False),
    ("10.1.1.1", True, False),
    ("169.254.169.254", True, True),  # cloud metadata: never, whatever the setting
    ("::ffff:169.254.169.254", True, True),
    ("fe80::1", True, True),
    ("224.0.0.1", True, True),
    ("0.0.0.0", True, True),
    ("::", True, True),
    ("198.18.0.1", False, True),
    ("192.0.2.1", False, True),
    ("240.0.0.1", False, True),
    ("fec0::1", False, True),
    ("64:ff9b::a00:1", False, True),  # NAT64 of 10.0.0.1
    ("64:ff9b::808:808", False, False),  # NAT64 of 8.8.8.8
])
def test_address_refusals(address, private_allowed, refused):
    assert (outbound.address_refusal(ipaddress.ip_address(address), private_allowed) is not None) is refused


def test_a_name_that_resolves_to_a_private_address_is_refused_at_connect_time(server, dns, internet):
    local = server()
    answers, asked = dns
    answers["internal.example"] = [["127.0.0.1"]]
    answers["mixed.example"] = [[PUBLIC_IP, "10.0.0.7"]]  # one refused address refuses the whole answer
    for host in ("internal.example", "mixed.example"):
        with pytest.raises(OutboundError) as caught:
            get(DEVELOPMENT, local.url("/", host=host))
        assert caught.value.kind == outbound.REFUSED
    assert asked == ["internal.example", "mixed.example"] and internet == [] and local.paths == []


# -- (2) redirects ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("location", [
    "http://127.0.0.1:8080/admin",
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://[::1]/",
    "https://attacker@platform.example/jwks",
    "file:///etc/passwd",
])
def test_a_redirect_to_a_refused_url_is_refused(location):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get("https://platform.example/jwks", status=302, headers={"Location": location})
        with pytest.raises(OutboundError) as caught:
            get(DEVELOPMENT, "https://platform.example/jwks")
        assert len(mock.calls) == 1  # the second hop was never sent
    assert caught.value.kind == outbound.REFUSED


def test_a_redirect_from_a_public_host_to_a_name_of_a_private_address_is_refused(server, dns, internet):
    internal = server()
    public = server({"/jwks": (302, {"Location": internal.url("/secret", host="internal.example")}, b"")})
    answers, _asked = dns
    answers["platform.example"] = [[PUBLIC_IP]]
    answers["internal.example"] = [["127.0.0.1"]]
    with pytest.raises(OutboundError) as caught:
        get(DEVELOPMENT, public.url("/jwks", host="platform.example"))
    assert caught.value.kind == outbound.REFUSED
    assert public.paths == ["/jwks"] and internal.paths == [] and internet == [PUBLIC_IP]


def test_redirects_are_capped_followed_for_get_only_and_lose_authorization_across_origins():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        for hop in range(4):
            mock.get(f"https://platform.example/{hop}", status=302,
                     headers={"Location": f"https://platform.example/{hop + 1}"})
        with pytest.raises(OutboundError, match="more than 3 redirects"):
            get(DEVELOPMENT, "https://platform.example/0")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post("https://platform.example/token", status=307, headers={"Location": "https://elsewhere.example/"})
        with outbound.session(DEVELOPMENT) as http:
            assert http.post("https://platform.example/token", data={"secret": "x"}).status_code == 307
        assert len(mock.calls) == 1
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get("https://platform.example/members", status=302, headers={"Location": "https://cdn.example/m"})
        mock.get("https://cdn.example/m", json={"members": []}, headers={"Set-Cookie": "s=1; Path=/"})
        with outbound.session(DEVELOPMENT) as http:
            answer = http.get("https://platform.example/members", headers={"Authorization": "Bearer t"})
            assert answer.json() == {"members": []}
            http.get("https://cdn.example/m")
        assert mock.calls[0].request.headers["Authorization"] == "Bearer t"
        assert "Authorization" not in mock.calls[1].request.headers
        assert "Cookie" not in mock.calls[2].request.headers  # the guard keeps no cookies


# -- (3) DNS answers that change -----------------------------------------------------------------------------

def test_a_dns_answer_that_changes_cannot_reach_a_private_address(server, dns, internet):
    """Rebinding: the platform's name answers a public address, then 127.0.0.1. The guard resolves once per
    connection, checks that answer and connects the socket to the very address it checked, so the second
    answer is refused and nothing ever connects to 127.0.0.1."""
    local = server()
    answers, asked = dns
    answers["rebind.example"] = [[PUBLIC_IP], ["127.0.0.1"]]
    assert get(DEVELOPMENT, local.url("/", host="rebind.example")).json() == {"ok": True}
    with pytest.raises(OutboundError) as caught:
        get(DEVELOPMENT, local.url("/", host="rebind.example"))
    assert caught.value.kind == outbound.REFUSED
    assert asked == ["rebind.example", "rebind.example"]  # one lookup per connection, no second one to race
    assert internet == [PUBLIC_IP] and local.paths == ["/"]


def test_a_real_request_to_a_local_server_when_private_addresses_are_allowed(server, internet):
    local = server()
    with outbound.session(LOCAL) as http:
        assert http.get(local.url("/"), timeout=2).json() == {"ok": True}
        assert http.get(local.url("/"), timeout=2).json() == {"ok": True}  # a kept-alive connection
    assert internet == ["127.0.0.1"] and local.paths == ["/", "/"]


def certificate(folder: Path, name: str) -> tuple[str, str]:
    """A self-signed certificate for ``name`` (and its key), as PEM files."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_connects_to_the_checked_address_and_verifies_the_host_name(server, dns, internet, tmp_path):
    """The socket goes to the address the guard checked, while TLS is verified for the URL's host name."""
    import ssl

    right, wrong = server(), server()
    for local, name in ((right, "platform.example"), (wrong, "elsewhere.example")):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate(tmp_path, name))
        local.httpd.socket = context.wrap_socket(local.httpd.socket, server_side=True)
    answers, _asked = dns
    answers["platform.example"] = [[PUBLIC_IP]]
    with outbound.session(outbound.STRICT) as http:
        bundle = tmp_path / "trusted.pem"  # both certificates trusted: only the name tells them apart
        bundle.write_text("".join((tmp_path / f"{name}.crt").read_text()
                                  for name in ("platform.example", "elsewhere.example")))
        http.verify = str(bundle)
        assert http.get(f"https://platform.example:{right.port}/", timeout=2).json() == {"ok": True}
        with pytest.raises(OutboundError) as caught:  # a certificate for another name
            http.get(f"https://platform.example:{wrong.port}/", timeout=2)
    assert caught.value.kind == outbound.FAILED and "hostname mismatch" in caught.value.reason.lower()
    assert internet == [PUBLIC_IP, PUBLIC_IP] and right.paths == ["/"] and wrong.paths == []


# -- (4) size and time limits --------------------------------------------------------------------------------

def test_a_body_larger_than_allowed_is_not_read(server):
    big = b"[" + b"1," * 600_000 + b"1]"
    local = server({"/length": (200, {}, big), "/stream": (200, {"Content-Length": ""}, big)})
    for path in ("/length", "/stream"):
        with pytest.raises(OutboundError) as caught:
            get(LOCAL, local.url(path), max_bytes=1024 * 1024)
        assert caught.value.kind == outbound.TOO_LARGE
    assert len(get(LOCAL, local.url("/length"), max_bytes=2 * 1024 * 1024).content) == len(big)


class Drip:
    """A server on 127.0.0.1 that sends its answer a few bytes at a time, never slowly enough for a read
    timeout: ``headers`` drips header lines forever, else a status line and a long body are dripped."""

    def __init__(self, headers: bool):
        self.headers = headers
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            try:
                if self.headers:
                    connection.sendall(b"HTTP/1.1 200 OK\r\n")
                    for i in range(200):
                        connection.sendall(f"X-Drip-{i}: 1\r\n".encode())
                        time.sleep(0.05)
                else:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
                    for _ in range(1000):
                        connection.sendall(b" ")
                        time.sleep(0.05)
            except OSError:
                pass  # the guard gave up and shut the connection

    def close(self):
        self.thread.join(timeout=15)
        self.listener.close()


@pytest.mark.parametrize("headers", [True, False])
def test_a_server_that_drips_its_answer_is_given_up_at_the_deadline(headers):
    drip = Drip(headers)
    try:
        started = time.monotonic()
        with outbound.session(LOCAL) as http, pytest.raises(OutboundError) as caught:
            http.get(drip.url, timeout=1, deadline=0.6)
        elapsed = time.monotonic() - started
    finally:
        drip.close()
    assert caught.value.kind == outbound.TIMEOUT and "deadline" in caught.value.reason
    assert 0.5 < elapsed < 2.5
    assert not drip.thread.is_alive()  # the server saw the connection shut


def test_a_read_timeout_is_a_timeout():
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        with outbound.session(LOCAL) as http, pytest.raises(OutboundError) as caught:
            http.get(f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout=0.2)  # accepted, never answered
    finally:
        listener.close()
    assert caught.value.kind == outbound.TIMEOUT


# -- (5) one neutral error on /lti/register ------------------------------------------------------------------

def openid_configuration(issuer: str) -> bytes:
    return json.dumps({"issuer": issuer, "authorization_endpoint": issuer + "/auth",
                       "token_endpoint": issuer + "/token", "jwks_uri": issuer + "/jwks",
                       "registration_endpoint": issuer + "/register"}).encode()


def test_register_gives_one_neutral_error_whatever_the_address_answers(config, app_factory, server, dns):
    """An internal address that answers a perfect openid-configuration, a name of one, a host that does not
    answer, one that answers 500 or HTML: one code and one page, and the internal server sees nothing."""
    app = app_factory({**config, "OUTBOUND_ALLOW_PRIVATE": False})
    client = app.test_client()
    internal = server()
    internal.routes["/.well-known/openid-configuration"] = (
        200, {"Content-Type": "application/json"}, openid_configuration(internal.url("")))
    answers, _asked = dns
    answers["intranet.example"] = [["10.0.0.7"]]
    answers["loopback.example"] = [["127.0.0.1"]]

    def register(url):
        page = client.get("/lti/register", query_string={"openid_configuration": url})
        text = page.get_data(as_text=True)
        main = text[text.index("<main"):text.index("</main>")]
        # Each page has its own request id and time in the administrator's fold; the rest is one page.
        return page.status_code, error_code(page), re.sub(r'<details class="support">.*?</details>', "", main,
                                                          flags=re.S)

    pages = [register(internal.url("/.well-known/openid-configuration")),
             register(internal.url("/.well-known/openid-configuration", host="[::ffff:127.0.0.1]")),
             register(internal.url("/.well-known/openid-configuration", host="loopback.example")),
             register("http://intranet.example/.well-known/openid-configuration")]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get("https://down.example/.well-known/openid-configuration", body=requests.ConnectTimeout("timeout"))
        mock.get("https://broken.example/.well-known/openid-configuration", status=500, body="oops")
        mock.get("https://html.example/.well-known/openid-configuration", body="<html></html>",
                 content_type="text/html")
        for host in ("down", "broken", "html"):
            pages.append(register(f"https://{host}.example/.well-known/openid-configuration"))
    assert internal.paths == []
    assert pages[0][:2] == (400, "registration_config_unavailable")
    assert all(page == pages[0] for page in pages), [page[:2] for page in pages]


def test_register_fetches_through_the_guard_when_private_addresses_are_allowed(config, app_factory, server):
    """The same local platform is fetched when the setting allows it (development with the sandbox)."""
    app = app_factory({**config, "OUTBOUND_ALLOW_PRIVATE": True})
    local = server()
    local.routes["/.well-known/openid-configuration"] = (
        200, {"Content-Type": "application/json"}, openid_configuration(local.url("")))
    page = app.test_client().get("/lti/register", query_string={
        "openid_configuration": local.url("/.well-known/openid-configuration")})
    assert local.paths == ["/.well-known/openid-configuration"]
    assert page.status_code == 200, error_code(page)


# -- settings ------------------------------------------------------------------------------------------------

def test_settings(tmp_path):
    folder = str(tmp_path)
    secret = {"LTI_TOOL_SECRET_KEY": "x" * 40, "LTI_TOOL_BASE_URL": "https://tool.example",
              "LTI_TOOL_ENV": "production"}
    assert load_settings({}, instance_path=folder)["OUTBOUND_ALLOW_PRIVATE"] is True  # development, sandbox on
    assert load_settings({"LTI_TOOL_SANDBOX": "false"}, instance_path=folder)["OUTBOUND_ALLOW_PRIVATE"] is False
    production = load_settings(secret, instance_path=folder)
    assert production["OUTBOUND_ALLOW_PRIVATE"] is False
    assert OutboundPolicy.from_settings(production) == outbound.STRICT
    explicit = load_settings({**secret, "LTI_TOOL_OUTBOUND_ALLOW_PRIVATE": "true"}, instance_path=folder)
    assert OutboundPolicy.from_settings(explicit) == OutboundPolicy(allow_private=True, allow_http=False)
    for name, value in (("OUTBOUND_ALLOW_PRIVATE", "yes"), ("OUTBOUND_DEADLINE_SECONDS", "0"),
                        ("JWKS_REFETCH_CAP", "0")):
        with pytest.raises(ConfigurationError, match=name):
            load_settings({f"LTI_TOOL_{name}": value}, instance_path=folder)
    assert OutboundPolicy.from_settings({}) == outbound.STRICT  # settings that do not say are read strictly


# -- nothing fetches around the guard ------------------------------------------------------------------------

NETWORK_MODULES = ("requests", "urllib3", "httpx", "aiohttp", "pycurl", "http.client", "urllib.request",
                   "socket", "ssl", "smtplib")
ALLOWED = {
    Path("lti_tool/outbound.py"): NETWORK_MODULES,
    # The staff console's OpenID Connect provider is configured by the operator (LTI_TOOL_STAFF_OIDC_ISSUER),
    # never named by a request.
    Path("lti_tool/web/staff.py"): ("authlib",),
    # authlib's OpenID Connect clients (school sign-in, staff console) over GuardedOAuth2Session: the guard's
    # session, every request of theirs checked.
    Path("lti_tool/identity/oidc.py"): ("authlib",),
    # Outgoing e-mail goes to the operator's own SMTP server (LTI_TOOL_SMTP_HOST), never to an address a request
    # names.
    Path("lti_tool/mail.py"): ("smtplib", "ssl"),
}


def test_only_the_guard_module_imports_an_http_client():
    root = Path(__file__).resolve().parent.parent
    found = []
    for package in ("lti_tool", "catalog_sync"):
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            allowed = ALLOWED.get(relative, ())
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
                else:
                    continue
                for name in names:
                    for module in NETWORK_MODULES + ("authlib",):
                        if (name == module or name.startswith(module + ".")) and module not in allowed:
                            found.append(f"{relative}:{node.lineno} imports {name}")
    assert found == []


def test_the_guard_module_knows_neither_flask_nor_the_web_or_service_layers():
    path = Path(outbound.__file__)
    imported = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    assert not any(name.split(".")[0] in ("flask", "sqlalchemy") or name.startswith(".")
                   or name.startswith("lti_tool") for name in imported), imported
