"""The rate limiter's Redis client against the machine's Redis, and against servers on
127.0.0.1 that misbehave: silent, garbling, or gone."""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from modelyard.limits.redis_client import (
    BACKOFF_FIRST_S,
    RedisClient,
    RedisError,
    RedisReplyError,
    Script,
)
from tests.certs import certificate
from tests.e2e.server import free_port

REDIS = "redis://127.0.0.1:6379/0"
ECHO = Script("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")


async def test_scripts_run_and_are_loaded_when_redis_does_not_know_them() -> None:
    client = RedisClient(REDIS)
    try:
        await client.call("SCRIPT", "FLUSH")
        assert await client.evalsha(ECHO, ["k"], ["v", 41]) == [b"k", b"v", 42]
        assert await client.evalsha(ECHO, ["k"], ["w", 1]) == [b"k", b"w", 2]
    finally:
        await client.close()


async def test_concurrent_callers_share_one_connection_and_get_their_own_replies() -> None:
    client = RedisClient(REDIS)
    key = f"test-redis-client-{secrets.token_hex(4)}"
    try:
        results = await asyncio.gather(*(client.call("INCR", key) for _ in range(500)))
        assert sorted(results) == list(range(1, 501))
        # A caller that gives up does not shift the replies of those after it.
        slow = asyncio.ensure_future(client.call("BLPOP", f"{key}-empty", "0.3"))
        follower = asyncio.ensure_future(client.call("GET", key))
        await asyncio.sleep(0.05)
        assert not slow.done()
        slow.cancel()
        assert await follower == b"500"
        assert await client.call("INCR", key) == 501
    finally:
        await client.call("DEL", key)
        await client.close()


async def test_an_error_reply_is_raised_and_the_connection_stays_usable() -> None:
    client = RedisClient(REDIS)
    try:
        with pytest.raises(RedisReplyError, match="unknown command"):
            await client.call("NO-SUCH-COMMAND")
        with pytest.raises(RedisReplyError, match=r"compiling script|Error"):
            await client.evalsha(Script("this is not lua"), [], [])
        assert await client.call("PING") == b"PONG"
    finally:
        await client.close()


async def test_the_database_number_in_the_url_is_selected() -> None:
    key = f"test-redis-db-{secrets.token_hex(4)}"
    in_db3, in_db0 = RedisClient("redis://127.0.0.1:6379/3"), RedisClient(REDIS)
    try:
        await in_db3.call("SET", key, "three")
        assert await in_db3.call("GET", key) == b"three"
        assert await in_db0.call("GET", key) is None
    finally:
        await in_db3.call("DEL", key)
        await in_db3.close()
        await in_db0.close()


@asynccontextmanager
async def fake_redis(
    answer: Callable[[bytes, asyncio.StreamWriter], None],
) -> AsyncIterator[str]:
    connections: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            while data := await reader.read(65536):
                answer(data, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"redis://127.0.0.1:{port}/0"
        for writer in connections:
            writer.close()


async def test_no_reply_in_time_closes_the_connection_and_the_next_call_reconnects() -> None:
    replies = iter([None, b"+PONG\r\n"])  # silent the first time, then well behaved

    def answer(data: bytes, writer: asyncio.StreamWriter) -> None:
        reply = next(replies)
        if reply is not None:
            writer.write(reply)

    async with fake_redis(answer) as url:
        client = RedisClient(url, timeout_s=0.2)
        with pytest.raises(RedisError, match=r"did not answer within 0\.2 s"):
            await client.call("PING")
        # A connection that never answered counts as a failed one: a short backoff first.
        await asyncio.sleep(BACKOFF_FIRST_S)
        assert await client.call("PING") == b"PONG"
        await client.close()


async def test_a_garbled_reply_fails_the_call_instead_of_misreading_it() -> None:
    async with fake_redis(lambda data, writer: writer.write(b"!!! not resp\r\n")) as url:
        client = RedisClient(url)
        with pytest.raises(RedisError, match="garbled"):
            await client.call("PING")
        await client.close()


async def test_unreachable_redis_is_a_redis_error() -> None:
    port = free_port()  # nobody listens there
    client = RedisClient(f"redis://127.0.0.1:{port}")
    with pytest.raises(RedisError, match="cannot connect"):
        await client.call("PING")
    await client.close()
    with pytest.raises(ValueError, match="not a redis"):
        RedisClient("http://127.0.0.1:6379")


# -- against redis-server processes of the test's own -------------------------------------


@contextmanager
def redis_server(*options: str, tls_port: bool = False, port: int = 0) -> Iterator[int]:
    """A redis-server on 127.0.0.1 (a free port unless given; plain, or TLS only), gone
    afterwards."""
    port = port or free_port()
    ports = ["--port", "0", "--tls-port", str(port)] if tls_port else ["--port", str(port)]
    command = ["redis-server", "--bind", "127.0.0.1", *ports, "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else b""
            assert time.monotonic() < deadline, "redis-server did not start"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def test_the_url_credentials_are_sent_on_every_connect_before_select() -> None:
    with redis_server("--requirepass", "s3cret") as port:
        admin = RedisClient(f"redis://:s3cret@127.0.0.1:{port}/2")
        assert await admin.call("SET", "k", "in db 2") == b"OK"
        assert b"db=2" in await admin.call("CLIENT", "INFO")
        await admin.call("ACL", "SETUSER", "alice", "on", ">wonder land", "~*", "+@all")
        alice = RedisClient(f"redis://alice:wonder%20land@127.0.0.1:{port}/2")
        assert await alice.call("ACL", "WHOAMI") == b"alice"
        assert await alice.call("GET", "k") == b"in db 2"
        # Redis drops the connection; the next call authenticates and selects again.
        alice_id = await alice.call("CLIENT", "ID")
        await admin.call("CLIENT", "KILL", "ID", alice_id)
        await asyncio.sleep(0.1)
        assert await alice.call("GET", "k") == b"in db 2"
        assert await alice.call("ACL", "WHOAMI") == b"alice"
        for client in (admin, alice):
            await client.close()


async def test_refused_or_missing_credentials_are_named() -> None:
    with redis_server("--requirepass", "s3cret") as port:
        wrong = RedisClient(f"redis://:nope@127.0.0.1:{port}")
        with pytest.raises(RedisError, match=r"refused the URL's credentials .*WRONGPASS"):
            await wrong.call("PING")
        await wrong.close()
        no_user = RedisClient(f"redis://bob:s3cret@127.0.0.1:{port}")
        with pytest.raises(RedisError, match=r"credentials \(user 'bob'\).*WRONGPASS"):
            await no_user.call("PING")
        await no_user.close()
        without = RedisClient(f"redis://127.0.0.1:{port}")
        with pytest.raises(RedisReplyError, match="NOAUTH"):
            await without.call("PING")
        await without.close()


async def test_rediss_is_verified_by_default_and_takes_redis_py_options(tmp_path: Path) -> None:
    cert_file, key_file = certificate(tmp_path)
    tls = ["--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file)]
    tls += ["--tls-ca-cert-file", str(cert_file), "--tls-auth-clients", "no"]
    with redis_server(*tls, "--requirepass", "s3cret", tls_port=True) as port:
        url = f"rediss://:s3cret@127.0.0.1:{port}/1"
        verified = RedisClient(f"{url}?ssl_ca_certs={cert_file}")
        assert await verified.call("PING") == b"PONG"
        await verified.close()
        unknown_ca = RedisClient(url)
        with pytest.raises(RedisError, match="certificate verify failed"):
            await unknown_ca.call("PING")
        await unknown_ca.close()
        unverified = RedisClient(f"{url}?ssl_cert_reqs=none")
        assert await unverified.call("PING") == b"PONG"
        await unverified.close()
        plain = RedisClient(f"redis://:s3cret@127.0.0.1:{port}/1", timeout_s=0.5)
        with pytest.raises(RedisError):  # a TLS port does not speak plain RESP
            await plain.call("PING")
        await plain.close()
    with pytest.raises(ValueError, match="ssl_cert_reqs must be one of none, optional, required"):
        RedisClient("rediss://127.0.0.1?ssl_cert_reqs=sometimes")
    with pytest.raises(ValueError, match=r"ssl_ca_certs='/nonexistent\.pem' cannot be read"):
        RedisClient("rediss://127.0.0.1?ssl_ca_certs=/nonexistent.pem")


async def call_for(client: RedisClient, seconds: float) -> list[str]:
    """Call every 5 ms for `seconds`; the errors, in order."""
    errors = []
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        try:
            await client.call("PING")
        except RedisError as exc:
            errors.append(str(exc))
        await asyncio.sleep(0.005)
    return errors


async def test_a_dead_redis_is_retried_with_backoff_and_calls_meanwhile_fail_fast() -> None:
    port = free_port()  # nobody listens there, for now
    client = RedisClient(f"redis://127.0.0.1:{port}")
    errors = await call_for(client, 1.5)
    attempts = [e for e in errors if e.startswith("cannot connect")]
    fast = [e for e in errors if e.startswith("Redis is unavailable")]
    # 50 ms doubling (each wait from its upper half): 5 to 7 attempts in 1.5 s, not 300.
    assert 3 <= len(attempts) <= 8, attempts
    assert len(fast) > 100 and len(attempts) + len(fast) == len(errors)
    with redis_server(port=port):  # it comes back: within the 2 s cap, plus margin
        deadline = time.monotonic() + 10
        while True:
            try:
                assert await client.call("PING") == b"PONG"
                break
            except RedisError:
                assert time.monotonic() < deadline, "the client did not reconnect"
                await asyncio.sleep(0.05)
        await client.close()


async def test_a_redis_that_accepts_and_hangs_up_is_backed_off_too() -> None:
    connections = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    listening = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    async with listening:
        client = RedisClient(f"redis://127.0.0.1:{listening.sockets[0].getsockname()[1]}")
        errors = await call_for(client, 1.5)
        await client.close()
    assert len(errors) > 100 and 3 <= connections <= 8, connections
