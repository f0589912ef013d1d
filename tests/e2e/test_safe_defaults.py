"""Safe defaults over the wire: admin sessions and CSRF, security headers, the login body's
cap, private files in the data dir, and a banner that shows each key only once."""

from __future__ import annotations

import os
import re
import socket
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.server import RunningGateway, start_gateway

ADMIN = "safe-defaults-admin-key"
# A gateway that only proxies starts in a second; these checks need no model.
LIGHT = {"MODELYARD_LOAD_LOCAL": "0"}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path_factory.mktemp("safe-defaults"), admin_key=ADMIN, env=LIGHT)
    yield running
    running.stop()


def sign_in(gateway: RunningGateway) -> str:
    """POST /login with the admin key; the session cookie's value.

    The cookie is Secure, so httpx's jar would not send it over http://127.0.0.1: the tests
    carry it by hand, as a copied cookie would be.
    """
    response = httpx.post(
        gateway.base_url + "/login", data={"admin_key": ADMIN, "next": "/apps"}, timeout=10
    )
    assert response.status_code == 303, response.text
    match = re.search(r"modelyard_admin=([^;]+)", response.headers["set-cookie"])
    assert match is not None
    return match.group(1)


def get_apps(gateway: RunningGateway, cookie: str) -> httpx.Response:
    return httpx.get(
        gateway.base_url + "/apps", headers={"cookie": f"modelyard_admin={cookie}"}, timeout=10
    )


def csrf_token(page_html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page_html)
    assert match is not None, "the page's sign-out form carries no CSRF token"
    return match.group(1)


def sign_out(gateway: RunningGateway, cookie: str, data: dict[str, str]) -> httpx.Response:
    return httpx.post(
        gateway.base_url + "/logout",
        data=data,
        headers={"cookie": f"modelyard_admin={cookie}"},
        timeout=10,
    )


# -- sessions and CSRF -------------------------------------------------------------------


def test_the_cookie_is_a_session_id_not_the_admin_key(gateway: RunningGateway) -> None:
    cookie = sign_in(gateway)
    assert ADMIN not in cookie and len(cookie) >= 32
    assert get_apps(gateway, cookie).status_code == 200


def test_sign_out_ends_the_session_so_a_copy_of_the_cookie_opens_nothing(
    gateway: RunningGateway,
) -> None:
    cookie = sign_in(gateway)
    apps = get_apps(gateway, cookie)
    assert apps.status_code == 200
    token = csrf_token(apps.text)

    out = sign_out(gateway, cookie, {"csrf_token": token})
    assert out.status_code == 303
    assert "modelyard_admin=" in out.headers["set-cookie"]  # the browser's copy is dropped too

    again = get_apps(gateway, cookie)  # the old cookie, replayed
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=/apps"


def test_a_form_post_without_the_right_csrf_token_is_403(gateway: RunningGateway) -> None:
    cookie = sign_in(gateway)
    token = csrf_token(get_apps(gateway, cookie).text)

    for data in ({}, {"csrf_token": "not-the-token"}, {"csrf_token": token[:-1]}):
        refused = sign_out(gateway, cookie, data)
        assert refused.status_code == 403
        assert "csrf_token" in refused.json()["error"]["message"]
    # Nothing was done: the session still opens the pages.
    assert get_apps(gateway, cookie).status_code == 200
    # Another session's token does not fit this one.
    other = csrf_token(get_apps(gateway, sign_in(gateway)).text)
    assert sign_out(gateway, cookie, {"csrf_token": other}).status_code == 403


def test_a_made_up_cookie_opens_nothing(gateway: RunningGateway) -> None:
    for cookie in ("x" * 43, ADMIN):  # a guess, and the old scheme's cookie (the key itself)
        response = get_apps(gateway, cookie)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_a_session_ends_by_itself_after_its_ttl(tmp_path: Path) -> None:
    running = start_gateway(
        tmp_path, admin_key=ADMIN, env={**LIGHT, "MODELYARD_ADMIN_SESSION_TTL_S": "1"}
    )
    try:
        cookie = sign_in(running)
        assert get_apps(running, cookie).status_code == 200
        time.sleep(2.5)
        assert get_apps(running, cookie).status_code == 303
    finally:
        running.stop()


def test_rotating_the_admin_key_ends_every_session(tmp_path: Path) -> None:
    before = start_gateway(tmp_path, admin_key=ADMIN, env=LIGHT)
    try:
        cookie = sign_in(before)
    finally:
        before.stop()
    after = start_gateway(tmp_path, admin_key="the-rotated-admin-key", env=LIGHT)
    try:
        assert get_apps(after, cookie).status_code == 303
    finally:
        after.stop()


def test_every_worker_sees_a_sign_in_and_a_sign_out(tmp_path: Path) -> None:
    running = start_gateway(tmp_path, admin_key=ADMIN, env=LIGHT, extra_args=["--workers", "2"])
    try:
        cookie = sign_in(running)
        # Each request on a new connection: the kernel spreads them over both workers.
        assert {get_apps(running, cookie).status_code for _ in range(20)} == {200}
        token = csrf_token(get_apps(running, cookie).text)
        assert sign_out(running, cookie, {"csrf_token": token}).status_code == 303
        assert {get_apps(running, cookie).status_code for _ in range(20)} == {303}
    finally:
        running.stop()


# -- security headers --------------------------------------------------------------------


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)
    policy = response.headers.get("content-security-policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in policy.split(";")}
    assert directives.get("script-src") == "script-src 'self'", (response.url, policy)
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_every_page_response_carries_the_security_headers(gateway: RunningGateway) -> None:
    base = gateway.base_url
    with httpx.Client(base_url=base, timeout=10) as client:
        responses = [
            client.get("/"),
            client.get("/models"),
            client.get("/models/huggingface/smollm2-135m-instruct"),
            client.get("/models/nobody/nothing"),
            client.get("/chat"),
            client.get("/login?next=/apps"),
            client.get("/apps"),
            client.get("/apps/default"),
            client.get("/static/chat.js"),
            client.get("/static/style.css"),
            client.post("/login", data={"admin_key": "wrong"}),
            client.post("/logout", data={}),
        ]
        cookie = {"cookie": f"modelyard_admin={sign_in(gateway)}"}
        responses += [
            client.get("/apps", headers=cookie),
            client.get("/apps/default", headers=cookie),
            client.post("/logout", data={}, headers=cookie),  # the 403 error body
        ]
    statuses = [r.status_code for r in responses]
    assert statuses == [302, 200, 200, 404, 200, 200, 303, 303, 200, 200, 401, 303, 200, 200, 403]
    for response in responses:
        assert_security_headers(response)


# -- the login body ----------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


@contextmanager
def peak_rss(pid: int) -> Iterator[list[int]]:
    """Samples the process's RSS every few ms while the block runs; yields [baseline, peak]."""
    numbers = [rss_kib(pid), 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            numbers[1] = max(numbers[1], rss_kib(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield numbers
    finally:
        time.sleep(0.2)  # a last look after the response
        stop.set()
        sampler.join(5)


def post_huge_login(gateway: RunningGateway, size: int, *, chunked: bool) -> bytes:
    """Send a login body of `size` bytes over a raw socket while reading the answer; the
    status line and headers of what came back (b"" if the connection closed first)."""
    url = urlsplit(gateway.base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(
        f"POST /login HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n{length}\r\n\r\n".encode()
    )
    piece = b"a" * (1 << 20)
    if chunked:
        piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"

    def send_body() -> None:
        sent = 0
        try:
            while sent < size:
                sock.sendall(piece)
                sent += 1 << 20
            sock.sendall(b"0\r\n\r\n" if chunked else b"")
        except OSError:  # the server answered and closed, or stopped reading
            pass

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    head = b""
    try:
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            if not data:
                break
            head += data
    except OSError:
        pass
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        sender.join(15)
    return head.split(b"\r\n\r\n")[0]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_100_mb_login_body_is_refused_before_it_is_read(
    gateway: RunningGateway, chunked: bool
) -> None:
    with peak_rss(gateway.process.pid) as rss:
        head = post_huge_login(gateway, 100 * 1024 * 1024, chunked=chunked)
    baseline, peak = rss
    grown_mib = (max(peak, baseline) - baseline) / 1024
    print(f"RSS {baseline / 1024:.1f} MiB -> peak {peak / 1024:.1f} MiB")
    assert grown_mib < 20, f"the server grew by {grown_mib:.0f} MiB"
    assert head.startswith(b"HTTP/1.1 413"), head
    # And it still serves.
    assert httpx.get(gateway.base_url + "/health", timeout=10).status_code == 200


def test_a_login_body_dropped_midway_leaves_no_traceback(gateway: RunningGateway) -> None:
    url = urlsplit(gateway.base_url)
    for _ in range(5):
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(
                f"POST /login HTTP/1.1\r\nHost: {url.netloc}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 3000\r\n\r\nadmin_key=abc".encode()
            )
            time.sleep(0.1)  # the handler is waiting for the rest of the body
    time.sleep(1)
    assert httpx.get(gateway.base_url + "/health", timeout=10).status_code == 200
    log = gateway.log()
    assert "Traceback" not in log and "ClientDisconnect" not in log


# -- files in the data dir and the banner ------------------------------------------------


def harness_log(path: Path) -> bool:
    """tests/e2e/server.py writes the server's output into the data dir; that one is ours."""
    return re.fullmatch(r"server-\d+\.log", path.name) is not None


def test_the_data_dir_and_every_file_in_it_are_the_operators_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    previous = os.umask(0o022)  # the usual default: what made the files 0644 before
    try:
        running = start_gateway(data_dir, env={**LIGHT, "MODELYARD_ADMIN_KEY": ""})
    finally:
        os.umask(previous)
    try:
        admin_key = (data_dir / "admin_key").read_text().strip()
        # Writes, so the WAL holds something and both -wal and -shm exist.
        response = httpx.post(running.base_url + "/login", data={"admin_key": admin_key})
        assert response.status_code == 303
        modes = {
            path.relative_to(data_dir).as_posix(): stat.S_IMODE(path.stat().st_mode)
            for path in data_dir.rglob("*")
            if not harness_log(path)
        }
    finally:
        running.stop()
    assert {"admin_key", "default_app_key", "modelyard.db", "modelyard.db-wal"} <= set(modes)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name, mode in modes.items():
        wanted = 0o700 if (data_dir / name).is_dir() else 0o600
        assert mode == wanted, f"{name} is {mode:o}"


def test_an_old_world_readable_database_is_made_private_on_start(tmp_path: Path) -> None:
    running = start_gateway(tmp_path, admin_key=ADMIN, env=LIGHT)
    running.stop()
    # What earlier versions left: the key files were 0600 already, the rest was not.
    for path in (tmp_path, *tmp_path.glob("modelyard.db*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    running = start_gateway(tmp_path, admin_key=ADMIN, env=LIGHT)
    try:
        sign_in(running)  # a write: the WAL and its index exist while it runs
        files = list(tmp_path.glob("modelyard.db*"))
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
    finally:
        running.stop()
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    assert modes == {"modelyard.db": 0o600, "modelyard.db-wal": 0o600, "modelyard.db-shm": 0o600}


def test_the_banner_shows_each_key_only_on_the_start_that_made_it(tmp_path: Path) -> None:
    own_key = {**LIGHT, "MODELYARD_ADMIN_KEY": ""}  # the gateway makes and keeps its own
    first = start_gateway(tmp_path, env=own_key)
    first.stop()
    admin_key = (tmp_path / "admin_key").read_text().strip()
    app_key = first.app_key
    assert admin_key in first.log() and app_key in first.log()  # shown once, to start with

    second = start_gateway(tmp_path, env=own_key)
    second.stop()
    log = second.log()
    assert admin_key not in log and app_key not in log
    assert f"kept in {tmp_path / 'admin_key'}" in log
    # The curl line still works as printed: it reads the key from its file.
    assert f"Bearer $(cat {tmp_path / 'default_app_key'})" in log

    third = start_gateway(tmp_path, admin_key="operator-chosen-admin-key", env=LIGHT)
    third.stop()
    assert "operator-chosen-admin-key" not in third.log()
    assert "from MODELYARD_ADMIN_KEY" in third.log()
