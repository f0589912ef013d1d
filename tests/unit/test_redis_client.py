"""The rate limiter's Redis client against the machine's Redis, and against servers on
127.0.0.1 that misbehave: silent, garbling, or gone."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from modelyard.limits.redis_client import RedisClient, RedisError, RedisReplyError, Script
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
