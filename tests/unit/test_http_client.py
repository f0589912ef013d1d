"""The upstream HTTP client against real servers on 127.0.0.1 that answer with scripted
bytes, so every way an answer can be framed, cut or garbled is exercised on the wire."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelyard.providers.http_client import (
    READ_BUFFER_BYTES,
    ConnectFailed,
    ConnectionBroken,
    HttpClient,
    Target,
)
from tests.e2e.server import free_port

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


async def test_a_stale_connection_that_fails_on_send_is_retried_once() -> None:
    async with server(lambda n, request, w: w.write(OK)) as (url, seen):
        client = HttpClient()
        assert await post(client, url) == (200, b"hello")
        # The server drops the idle connection without the client noticing in time.
        idle = next(iter(client._idle.values()))[0]
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


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for "localhost" and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


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
