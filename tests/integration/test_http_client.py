"""The upstream HTTP client against real servers on 127.0.0.1 that answer with scripted
bytes, so every way an answer can be framed, cut or garbled is exercised on the wire."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop

from modelyard.providers.http_client import (
    READ_BUFFER_BYTES,
    ConnectFailed,
    ConnectionBroken,
    HttpClient,
    Target,
)
from tests.certs import certificate
from tests.e2e.server import free_port
from tests.fakes.dropping_upstream import DroppingUpstream

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


@dataclass
class Seen:
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


@asynccontextmanager
async def server(
    answer: Callable[[int, bytes, asyncio.StreamWriter], object],
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[str, Seen]]:
    """A TCP server; `answer(n, request, writer)` replies to the n-th request it reads."""
    seen = Seen()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                seen.requests.append(request)
                result = answer(len(seen.requests), request, writer)
                if asyncio.iscoroutine(result):
                    await result
                await writer.drain()
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = listening.sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    async with listening:
        yield f"{scheme}://localhost:{port}/v1/chat/completions?x=1", seen


async def post(client: HttpClient, url: str, body: bytes = b'{"a": 1}') -> tuple[int, bytes]:
    response = await client.post(
        url, [("Content-Type", "application/json")], body, connect_timeout_s=2
    )
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def test_the_request_is_well_formed_and_a_connection_is_reused() -> None:
    async with server(lambda n, request, w: w.write(OK)) as (url, seen):
        client = HttpClient()
        for _ in range(3):
            assert await post(client, url) == (200, b"hello")
        await client.close()
    assert seen.connections == 1
    head, _, body = seen.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions?x=1 HTTP/1.1"
    assert b"Host: localhost:" in lines[1]
    assert b"Content-Length: 8" in lines and body == b'{"a": 1}'


async def test_chunked_and_close_delimited_bodies() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )

    def answer(n: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        if n != 2:
            writer.write(chunked)
        else:  # no length, no chunking: the body ends when the connection does
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            writer.close()

    async with server(answer) as (url, seen):
        client = HttpClient()
        assert await post(client, url) == (200, b"abcde")
        assert await post(client, url) == (200, b"until the end")
        assert await post(client, url) == (200, b"abcde")  # a new connection
        await client.close()
    assert seen.connections == 2


async def test_a_pooled_connection_the_server_closed_is_replaced_transparently() -> None:
    def answer(n: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK)
        writer.close()  # keep-alive was promised, but the server hangs up after each answer

    async with server(answer) as (url, seen):
        client = HttpClient()
        assert await post(client, url) == (200, b"hello")
        await asyncio.sleep(0.05)
        assert await post(client, url) == (200, b"hello")
        await client.close()
    assert seen.connections == 2


async def test_a_pooled_connection_found_dead_before_sending_is_replaced() -> None:
    async with server(lambda n, request, w: w.write(OK)) as (url, seen):
        client = HttpClient()
        assert await post(client, url) == (200, b"hello")
        # The idle connection is dropped without its protocol having heard of it yet.
        idle = next(iter(client._pools.values()))._idle[0]
        idle._transport.abort()  # type: ignore[union-attr]
        idle.closed = False
        assert await post(client, url) == (200, b"hello")
        await client.close()
    assert seen.connections == 2


async def test_informational_answers_are_skipped() -> None:
    answer_bytes = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    async with server(lambda n, request, w: w.write(answer_bytes)) as (url, _):
        client = HttpClient()
        assert await post(client, url) == (200, b"hello")
        assert await post(client, url) == (200, b"hello")
        await client.close()


async def test_headers_are_case_insensitive_and_repeated_ones_joined() -> None:
    raw = (
        b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n"
    )
    async with server(lambda n, request, w: w.write(raw)) as (url, _):
        client = HttpClient()
        response = await client.post(url, [], b"{}", connect_timeout_s=2)
        assert response.status == 429
        assert response.headers["retry-after"] == "3" and response.headers["x-a"] == "1, 2"
        assert await response.read() == b""
        response.release()
        await client.close()


async def test_garbled_or_cut_answers_are_connection_broken() -> None:
    answers = {
        1: b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly part",
        2: b"NOT HTTP AT ALL\r\n\r\n",
    }

    def answer(n: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(answers[n])
        writer.close()

    async with server(answer) as (url, _):
        client = HttpClient()
        with pytest.raises(ConnectionBroken, match="mid-answer"):
            await post(client, url)
        with pytest.raises(ConnectionBroken, match="malformed"):
            await post(client, url)
        await client.close()


async def test_a_server_that_hangs_up_unanswered_is_connect_failed() -> None:
    async with server(lambda n, request, w: w.close()) as (url, _):
        client = HttpClient()
        with pytest.raises(ConnectFailed, match="before an answer"):
            await post(client, url)
        await client.close()


async def test_refused_connections_and_bad_urls_and_headers() -> None:
    port = free_port()  # nobody listens there
    client = HttpClient()
    with pytest.raises(ConnectFailed, match="cannot connect"):
        await post(client, f"http://127.0.0.1:{port}/x")
    with pytest.raises(ConnectFailed, match="not an http"):
        await post(client, "ftp://example.com/x")
    async with server(lambda n, request, w: w.write(OK)) as (url, seen):
        for value in ("sk-1\r\nX-Injected: yes", "clé-ü✓"):
            with pytest.raises(ConnectFailed, match="header 'Authorization'"):
                await client.post(url, [("Authorization", value)], b"{}", connect_timeout_s=2)
    assert seen.requests == []
    await client.close()


async def test_a_streamed_body_arrives_piece_by_piece_and_a_slow_reader_pauses_the_socket() -> None:
    release = asyncio.Event()
    big = b"x" * (READ_BUFFER_BYTES * 3)

    async def answer(n: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big))

    async with server(answer) as (url, _):
        client = HttpClient()
        response = await client.post(url, [], b"{}", connect_timeout_s=2)
        assert await response.next_piece() == b"first"
        release.set()
        await asyncio.sleep(0.2)  # the server sends 3 MB; the client buffers about 1 MB
        connection = response._connection
        assert connection._paused and connection._buffered <= READ_BUFFER_BYTES * 2
        rest = b""
        while (piece := await response.next_piece()) is not None:
            rest += piece
        assert rest == big
        response.release()
        await client.close()


async def test_a_cancelled_read_closes_the_connection_instead_of_reusing_it() -> None:
    async def answer(n: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        if n == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
            await asyncio.sleep(5)
        else:
            writer.write(OK)

    async with server(answer) as (url, seen):
        client = HttpClient()
        response = await client.post(url, [], b"{}", connect_timeout_s=2)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await response.read()
        response.release()
        assert await post(client, url) == (200, b"hello")
        await client.close()
    assert seen.connections == 2


def test_targets_know_their_origin_and_host_header() -> None:
    target = Target.of("https://api.example.com/v1/messages")
    assert (target.origin, target.path, target.host_header) == (
        (True, "api.example.com", 443),
        "/v1/messages",
        b"api.example.com",
    )
    ipv6 = Target.of("http://[::1]:8080")
    assert (ipv6.origin, ipv6.path, ipv6.host_header) == ((False, "::1", 8080), "/", b"[::1]:8080")


async def test_https_is_verified_by_default_and_works_with_a_trusted_certificate(
    tmp_path: Path,
) -> None:
    cert_file, key_file = certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    async with server(lambda n, request, w: w.write(OK), tls=server_tls) as (url, seen):
        default = HttpClient()
        with pytest.raises(ConnectFailed, match="certificate verify failed"):
            await post(default, url)
        trusting = HttpClient(ssl.create_default_context(cafile=str(cert_file)))
        for _ in range(2):
            assert await post(trusting, url) == (200, b"hello")
        await trusting.close()
        await default.close()
    assert seen.connections == 1  # a refused handshake never reaches the handler


# -- a request is sent once ---------------------------------------------------------------


@pytest.mark.parametrize("delay_s", [0.0, 0.5])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_post_the_upstream_read_is_never_sent_again(stream: bool, delay_s: float) -> None:
    """An upstream that reads a request on a reused connection and closes it unanswered
    has the request: sending it again, on this or any other connection, would be a
    second generation. The client raises instead, once, and the caller decides."""
    with DroppingUpstream(delay_s=delay_s) as upstream:
        url = upstream.url + "/chat/completions"
        client = HttpClient()
        # Five connections in the pool, each of which has answered once.
        warm = [
            b'{"warm": %d, "stream": %s}' % (i, b"true" if stream else b"false") for i in range(5)
        ]
        answers = await asyncio.gather(*(post(client, url, body) for body in warm))
        assert [status for status, _ in answers] == [200] * 5
        assert len({seen.connection for seen in upstream.received}) == 5
        body = b'{"marker": "once", "stream": %s}' % (b"true" if stream else b"false")
        with pytest.raises(ConnectFailed, match="closed before an answer"):
            await post(client, url, body)
        assert upstream.times_received(b'"once"') == 1
        # The next request goes out on a connection that passes the checks, and only once.
        with pytest.raises(ConnectFailed):
            await post(client, url, b'{"marker": "twice"}')
        assert upstream.times_received(b'"twice"') == 1
        await client.close()


# -- a cap on open connections per origin -------------------------------------------------


async def test_open_connections_per_origin_are_capped_and_callers_queue() -> None:
    release = asyncio.Event()
    open_now = peak = 0

    async def answer(n: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.write(OK)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r")[0]))
                await answer(0, head, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            open_now -= 1
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}/x"
    async with listening:
        client = HttpClient(max_connections_per_origin=2)
        calls = [asyncio.ensure_future(post(client, url)) for _ in range(6)]
        await asyncio.sleep(0.3)
        assert peak == 2 and not any(call.done() for call in calls)
        release.set()
        assert await asyncio.gather(*calls) == [(200, b"hello")] * 6
        assert peak == 2
        # At the cap, the wait for a free connection is bounded by the connect timeout.
        release.clear()
        busy = [asyncio.ensure_future(post(client, url)) for _ in range(2)]
        await asyncio.sleep(0.1)
        with pytest.raises(ConnectFailed, match=r"no free connection .* all 2 allowed are busy"):
            await client.post(url, [], b"{}", connect_timeout_s=0.3)
        release.set()
        assert await asyncio.gather(*busy) == [(200, b"hello")] * 2
        assert await post(client, url) == (200, b"hello")  # the timed-out wait took no place
        await client.close()


async def test_a_failed_connect_gives_its_place_back() -> None:
    client = HttpClient(max_connections_per_origin=1)
    url = f"http://127.0.0.1:{free_port()}/x"  # nobody listens there
    for _ in range(3):
        with pytest.raises(ConnectFailed, match="cannot connect"):
            await post(client, url)
    await client.close()


# -- Happy Eyeballs -----------------------------------------------------------------------


async def test_an_address_that_does_not_answer_is_raced_by_the_next_one() -> None:
    """ "upstream.test" resolves to ::1 first, where SYNs go unanswered (a full accept
    queue drops them), then to 127.0.0.1, which answers. Tried one after the other, the
    connect would wait for ::1 until its timeout; raced (RFC 8305), 127.0.0.1 wins."""
    blackhole = socket.socket(socket.AF_INET6)
    blackhole.bind(("::1", 0))
    blackhole.listen(0)
    port = blackhole.getsockname()[1]
    fillers = []
    for _ in range(3):  # fill the accept queue, nobody accepts
        filler = socket.socket(socket.AF_INET6)
        filler.setblocking(False)
        filler.connect_ex(("::1", port))
        fillers.append(filler)

    async def resolve(host: str, port_: int) -> list[tuple[Any, ...]]:
        assert host == "upstream.test"
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port_, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_)),
        ]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n{}")
        writer.write(OK)
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        async with listening:
            client = HttpClient(resolver=resolve)
            response = await client.post(
                f"http://upstream.test:{port}/x", [], b"{}", connect_timeout_s=3
            )
            assert response.status == 200 and await response.read() == b"hello"
            response.release()
            await client.close()
    finally:
        for sock in [blackhole, *fillers]:
            sock.close()


# -- egress proxies -----------------------------------------------------------------------

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(scope="module")
def proxy_port() -> Iterator[int]:
    """proxy.py (PyPI) on 127.0.0.1, asking for Basic credentials user:secret."""
    port = free_port()
    command = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", str(port)]
    command += ["--basic-auth", "user:secret", "--num-workers", "1", "--num-acceptors", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "proxy.py did not start"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name.upper(), value)

    return set_env


async def test_a_plain_origin_goes_through_the_proxy_with_its_credentials(
    proxy_port: int, proxy_env: Callable[..., None]
) -> None:
    async with server(lambda n, request, w: w.write(OK)) as (url, seen):
        proxy_env(http_proxy=f"http://user:wrong@127.0.0.1:{proxy_port}")
        refused = HttpClient()
        assert (await post(refused, url))[0] == 407  # the proxy's answer: it was asked
        await refused.close()
        assert seen.requests == []
        proxy_env(http_proxy=f"http://user:secret@127.0.0.1:{proxy_port}")
        client = HttpClient()
        for _ in range(2):
            assert await post(client, url) == (200, b"hello")
        await client.close()
    assert len(seen.requests) == 2
    request_line = seen.requests[0].split(b"\r\n")[0]
    assert request_line == b"POST /v1/chat/completions?x=1 HTTP/1.1"  # the proxy forwarded it


async def test_an_https_origin_is_reached_through_a_connect_tunnel(
    tmp_path: Path, proxy_port: int, proxy_env: Callable[..., None]
) -> None:
    cert_file, key_file = certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    trusted = ssl.create_default_context(cafile=str(cert_file))
    async with server(lambda n, request, w: w.write(OK), tls=server_tls) as (url, seen):
        proxy_env(https_proxy=f"http://user:wrong@127.0.0.1:{proxy_port}")
        refused = HttpClient(trusted)
        with pytest.raises(ConnectFailed, match=r"refused CONNECT: HTTP 407"):
            await post(refused, url)
        await refused.close()
        proxy_env(https_proxy=f"http://user:secret@127.0.0.1:{proxy_port}")
        client = HttpClient(trusted)
        for _ in range(3):
            assert await post(client, url) == (200, b"hello")
        await client.close()
        # The certificate is checked inside the tunnel as it is without one.
        untrusting = HttpClient()
        with pytest.raises(ConnectFailed, match="certificate verify failed"):
            await post(untrusting, url)
        await untrusting.close()
    assert len(seen.requests) == 3 and seen.connections == 1  # one tunnel, kept alive


async def test_no_proxy_origins_are_reached_directly_and_bad_proxies_named(
    tmp_path: Path, proxy_port: int, proxy_env: Callable[..., None]
) -> None:
    wrong = f"http://user:wrong@127.0.0.1:{proxy_port}"
    async with server(lambda n, request, w: w.write(OK)) as (url, _):
        port = url.split(":")[2].split("/")[0]
        for bypass in ("example.com,localhost", f"localhost:{port}", "*"):
            proxy_env(http_proxy=wrong, https_proxy=wrong, no_proxy=bypass)
            client = HttpClient()
            assert await post(client, url) == (200, b"hello")  # the refusing proxy bypassed
            await client.close()
        proxy_env(no_proxy=f"localhost:{int(port) + 1}")  # another port: through the proxy
        client = HttpClient()
        assert (await post(client, url))[0] == 407
        await client.close()
        proxy_env(all_proxy="socks5://127.0.0.1:1080", http_proxy="", no_proxy="")
        client = HttpClient()
        with pytest.raises(ConnectFailed, match=r"ALL_PROXY is socks5://.*only http://"):
            await post(client, url)
        await client.close()


def test_the_tunnel_and_happy_eyeballs_work_on_uvloop_as_the_server_runs_them(
    tmp_path: Path, proxy_port: int, proxy_env: Callable[..., None]
) -> None:
    """`modelyard serve` runs on uvloop, whose transports are not asyncio's: start_tls
    and set_protocol on a tunnelled connection must work there too."""
    cert_file, key_file = certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    proxy_env(https_proxy=f"http://user:secret@127.0.0.1:{proxy_port}")

    async def exchange() -> tuple[list[tuple[int, bytes]], int]:
        async with server(lambda n, request, w: w.write(OK), tls=server_tls) as (url, seen):
            client = HttpClient(ssl.create_default_context(cafile=str(cert_file)))
            answers = [await post(client, url) for _ in range(2)]
            await client.close()
        return answers, seen.connections

    assert uvloop.run(exchange()) == ([(200, b"hello")] * 2, 1)


async def test_a_connection_that_received_bytes_while_idle_is_not_reused() -> None:
    async def answer(n: int, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.05)
        if n == 1:  # out of step: bytes after the answer, asked for by nobody
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")

    async with server(answer) as (url, seen):
        client = HttpClient()
        assert await post(client, url) == (200, b"hello")
        await asyncio.sleep(0.2)
        assert await post(client, url) == (200, b"hello")
        await client.close()
    assert seen.connections == 2 and len(seen.requests) == 2


async def test_a_second_answer_to_one_request_takes_the_connection_out_of_the_pool() -> None:
    twice = OK + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"

    async with server(lambda n, request, w: w.write(twice if n == 1 else OK)) as (url, seen):
        client = HttpClient()
        assert await post(client, url) == (200, b"hello")
        assert await post(client, url) == (200, b"hello")  # not "stale"
        await client.close()
    assert seen.connections == 2
