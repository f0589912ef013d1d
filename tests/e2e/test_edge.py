"""The server's edge under abuse: oversized heads and bodies, trickling clients, too many
connections, clients that write a whole body before reading. Raw sockets and urllib
against a real `modelyard serve`; memory and descriptors read from /proc."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import RunningGateway, start_gateway

ADMIN = "edge-admin-key"
MiB = 1024 * 1024
EDGE_ENV = {
    "MODELYARD_LOAD_LOCAL": "0",
    "MODELYARD_HEADER_TIMEOUT_S": "1",
    "MODELYARD_BODY_TIMEOUT_S": "1",
    "MODELYARD_LINGER_S": "2",
    "MODELYARD_MAX_BODY_BYTES": str(MiB),
}


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path_factory.mktemp("edge"), admin_key=ADMIN, env=EDGE_ENV)
    yield running
    running.stop()


def _status_field(gateway: RunningGateway, field: str) -> int:
    """A `VmRSS`-style line of the server's /proc status, in bytes."""
    for line in Path(f"/proc/{gateway.process.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc status")


def _open_fds(gateway: RunningGateway) -> int:
    return len(list(Path(f"/proc/{gateway.process.pid}/fd").iterdir()))


def _fds_settle(gateway: RunningGateway, ceiling: int, within: float = 10.0) -> int:
    deadline = time.monotonic() + within
    count = _open_fds(gateway)
    while count > ceiling and time.monotonic() < deadline:
        time.sleep(0.2)
        count = _open_fds(gateway)
    return count


def _connect(gateway: RunningGateway) -> socket.socket:
    port = int(gateway.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _read_until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _read_response(sock: socket.socket) -> bytes:
    """One response with a content-length body, leaving the connection open."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


def _error_of(response: bytes) -> dict[str, object]:
    body = json.loads(response.partition(b"\r\n\r\n")[2])
    assert isinstance(body, dict)
    error = body["error"]
    assert isinstance(error, dict)
    return error


def _trickle_until_closed(
    socks: list[socket.socket], byte: bytes, seconds: float
) -> dict[socket.socket, bytes]:
    """Send `byte` on every socket every 0.2 s until the server has closed each (EOF or
    reset) or `seconds` pass. Returns what each closed socket received."""
    selector = selectors.DefaultSelector()
    received = {sock: b"" for sock in socks}
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + seconds
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for sock in socks:
            if sock not in closed:
                with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
                    sock.send(byte)
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received[sock] += chunk
            else:
                closed[sock] = received[sock]
                selector.unregister(sock)
                sock.close()
    selector.close()
    for sock in socks:
        sock.close()
    return closed


# -- finding 5: sizes --------------------------------------------------------------------
def test_a_50_mb_header_gets_431_without_being_buffered(edge: RunningGateway) -> None:
    peak_before = _status_field(edge, "VmHWM")
    sock = _connect(edge)
    chunk = b"a" * MiB

    def send_head() -> None:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer ")
            for _ in range(50):
                sock.sendall(chunk)
        except OSError:
            pass  # the server stops reading once it has answered

    sender = threading.Thread(target=send_head, daemon=True)
    started = time.monotonic()
    sender.start()
    response = _read_until_closed(sock)
    elapsed = time.monotonic() - started
    sender.join(15)
    sock.close()
    assert response.startswith(b"HTTP/1.1 431 "), response[:200]
    assert _error_of(response)["code"] == 431
    assert elapsed < 10
    growth = _status_field(edge, "VmHWM") - peak_before
    assert growth < 8 * MiB, f"peak RSS grew by {growth / MiB:.1f} MiB"


def test_a_head_over_the_cap_in_one_write_gets_431(edge: RunningGateway) -> None:
    sock = _connect(edge)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    response = _read_until_closed(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 431 "), response[:200]


def test_heads_under_the_cap_and_bodies_behind_them_pass(edge: RunningGateway) -> None:
    sock = _connect(edge)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Big: " + b"a" * 30_000 + b"\r\n\r\n")
    assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
    body = b" " * 500_000  # arrives in the same reads as its head; under the 1 MiB chat cap
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer "
        + edge.app_key.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    response = _read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 400 "), response[:300]
    assert "JSON" in str(_error_of(response)["message"])


def test_a_10_mb_admin_body_gets_413_without_being_buffered(edge: RunningGateway) -> None:
    peak_before = _status_field(edge, "VmHWM")
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    declared = httpx.post(
        edge.base_url + "/admin/apps", content=b" " * (10 * MiB), headers=headers, timeout=30
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap must count as it reads
        for _ in range(10):
            yield b" " * MiB

    chunked = httpx.post(edge.base_url + "/admin/apps", content=chunks(), headers=headers)
    for response in (declared, chunked):
        assert response.status_code == 413, response.text
        assert response.json()["error"]["type"] == "request_too_large"
    growth = _status_field(edge, "VmHWM") - peak_before
    assert growth < 8 * MiB, f"peak RSS grew by {growth / MiB:.1f} MiB"


# -- finding 6: time and connections -----------------------------------------------------
def test_trickling_heads_are_answered_408_and_closed(edge: RunningGateway) -> None:
    baseline = _open_fds(edge)
    socks = [_connect(edge) for _ in range(50)]
    for sock in socks:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Slow: ")
    closed = _trickle_until_closed(socks, b"a", seconds=10)
    assert len(closed) == 50, f"{50 - len(closed)} of 50 still open after 10 s"
    assert all(got.startswith(b"HTTP/1.1 408 ") for got in closed.values())
    assert _fds_settle(edge, baseline + 3) <= baseline + 3


def test_trickling_bodies_are_answered_408_and_closed(edge: RunningGateway) -> None:
    baseline = _open_fds(edge)
    socks = [_connect(edge) for _ in range(50)]
    for sock in socks:
        sock.sendall(
            b"POST /admin/apps HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer "
            + ADMIN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
    # A byte every 0.2 s is progress all the time: only a deadline for the whole body ends it.
    closed = _trickle_until_closed(socks, b" ", seconds=10)
    assert len(closed) == 50, f"{50 - len(closed)} of 50 still open after 10 s"
    for got in closed.values():
        assert got.startswith(b"HTTP/1.1 408 "), got[:200]
        assert "request body" in str(_error_of(got)["message"])
    assert _fds_settle(edge, baseline + 3) <= baseline + 3


def test_a_kept_alive_connection_trickling_blank_lines_is_closed(edge: RunningGateway) -> None:
    sock = _connect(edge)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n")
    assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
    # Blank lines between requests are allowed, and each used to restart keep-alive's clock.
    closed = _trickle_until_closed([sock], b"\r\n", seconds=10)
    assert len(closed) == 1, "still open after 10 s"


def test_an_idle_kept_alive_connection_is_closed(edge: RunningGateway) -> None:
    sock = _connect(edge)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n")
    assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
    started = time.monotonic()
    assert _read_until_closed(sock, timeout=15) == b""
    assert time.monotonic() - started < 15
    sock.close()


def test_connections_past_the_cap_are_refused_with_503(tmp_path: Path) -> None:
    capped = start_gateway(
        tmp_path,
        admin_key=ADMIN,
        env={"MODELYARD_LOAD_LOCAL": "0", "MODELYARD_MAX_CONNECTIONS": "20"},
    )
    held: list[socket.socket] = []
    try:
        for _ in range(20):
            sock = _connect(capped)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
            held.append(sock)
        extra = _connect(capped)
        extra.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n")
        refused = _read_until_closed(extra)
        extra.close()
        assert refused.startswith(b"HTTP/1.1 503 "), refused[:200]
        assert _error_of(refused)["code"] == 503
        held.pop().close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if httpx.get(capped.base_url + "/health").status_code == 200:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("no connection accepted after one was closed")
    finally:
        for sock in held:
            sock.close()
        capped.stop()


# -- finding 14: a client that writes its whole body before reading ----------------------
@pytest.mark.parametrize("path", ["/admin/apps", "/v1/chat/completions"])
def test_urllib_posting_too_much_gets_413_not_a_reset(edge: RunningGateway, path: str) -> None:
    key = ADMIN if path.startswith("/admin") else edge.app_key
    request = urllib.request.Request(
        edge.base_url + path,
        # Over both limits (admin 64 KiB, chat MODELYARD_MAX_BODY_BYTES) and more than the
        # socket buffers hold, so the client is still writing when the server answers.
        data=b" " * (24 * MiB),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert json.loads(caught.value.read())["error"]["type"] == "request_too_large"


def test_urllib_posting_a_small_body_is_served(edge: RunningGateway) -> None:
    request = urllib.request.Request(  # urllib asks for Connection: close
        edge.base_url + "/admin/apps",
        data=b'{"name": "from-urllib"}',
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201)
        assert json.loads(response.read())["name"] == "from-urllib"


def test_an_edge_setting_of_zero_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="MODELYARD_BODY_TIMEOUT_S must be greater than 0"):
        start_gateway(tmp_path, env={"MODELYARD_LOAD_LOCAL": "0", "MODELYARD_BODY_TIMEOUT_S": "0"})


def test_an_early_answer_keeps_the_connection_once_the_body_is_read(
    edge: RunningGateway,
) -> None:
    sock = _connect(edge)
    body = b" " * 200_000
    sock.sendall(
        b"POST /admin/apps HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer wrong\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    assert _read_response(sock).startswith(b"HTTP/1.1 401 ")
    sock.sendall(body + b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n")
    assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
    sock.close()


def test_pipelined_requests_are_all_answered(edge: RunningGateway) -> None:
    sock = _connect(edge)
    sock.sendall(
        b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n"
        b"GET /health HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n"
    )
    both = _read_until_closed(sock)
    sock.close()
    assert both.count(b"HTTP/1.1 200 ") == 2, both


# -- a client that leaves mid-body -------------------------------------------------------
@pytest.mark.parametrize("path", ["/admin/apps", "/v1/chat/completions"])
def test_a_client_leaving_mid_body_logs_no_traceback(edge: RunningGateway, path: str) -> None:
    key = ADMIN if path.startswith("/admin") else edge.app_key
    log_before = len(edge.log())
    for _ in range(5):
        sock = _connect(edge)
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n".encode()
            + b"{" * 1000
        )
        time.sleep(0.1)
        sock.close()
    time.sleep(0.5)
    assert httpx.get(edge.base_url + "/health").status_code == 200
    assert "Traceback" not in edge.log()[log_before:]


def test_an_admin_body_nested_5000_deep_is_a_400(edge: RunningGateway) -> None:
    deep = b'{"name": "deep", "junk": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = httpx.post(
        f"{edge.base_url}/admin/apps",
        content=deep,
        headers={"Authorization": f"Bearer {edge.admin_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "junk"
    assert "Traceback" not in edge.log()
