"""Rate limits shared by every replica through Redis.

Check-and-consume is one Lua script, so concurrent requests on any number of gateways
cannot both take the last slot; it reads Redis's own clock, so replicas with skewed clocks
still agree on the window. If Redis cannot be reached the `failure_policy` decides: "open"
serves the request unlimited, "closed" answers 503. Either way a log line and a metric say so.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from modelyard.errors import ServiceUnavailable
from modelyard.limits.base import WINDOW_S, Limits, Reservation
from modelyard.limits.memory import rate_limited

log = logging.getLogger(__name__)

# KEYS[1]: zset id -> time (ms); KEYS[2]: hash id -> tokens.
# ARGV: window ms, rpm (0: none), tpm (0: none), tokens, id.
# Returns {admitted, requests in window, tokens in window, ms (retry-after or reset)}.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local rpm, tpm, tokens = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  redis.call('HDEL', KEYS[2], unpack(expired))
end
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local entries, used = {}, 0
for i = 1, #members, 2 do
  local spent = tonumber(redis.call('HGET', KEYS[2], members[i]) or '0')
  used = used + spent
  entries[#entries + 1] = {tonumber(members[i + 1]), spent}
end
local count, wait = #entries, 0
if rpm > 0 and count >= rpm then
  wait = math.max(wait, entries[count - rpm + 1][1] + window - now)
end
if tpm > 0 and used + tokens > tpm then
  local excess = used + tokens - tpm
  for i = 1, count do
    if excess <= 0 then break end
    excess = excess - entries[i][2]
    wait = math.max(wait, entries[i][1] + window - now)
  end
  if excess > 0 then wait = math.max(wait, window) end
end
if wait > 0 then return {0, count, used, wait} end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('HSET', KEYS[2], ARGV[5], tokens)
redis.call('PEXPIRE', KEYS[1], window)
redis.call('PEXPIRE', KEYS[2], window)
local oldest = now
if count > 0 then oldest = entries[1][1] end
return {1, count + 1, used + tokens, oldest + window - now}
"""

SETTLE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


class RedisRateLimiter:
    def __init__(
        self,
        url: str,
        *,
        failure_policy: str = "open",
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._redis = aioredis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._reserve = self._redis.register_script(RESERVE)
        self._settle = self._redis.register_script(SETTLE)
        self._fail_open = failure_policy == "open"
        self._on_failure = on_failure
        self._last_warning = 0.0

    @staticmethod
    def _keys(scope: str) -> list[str]:
        # One hash tag, so both keys land on the same Redis Cluster slot.
        return [f"modelyard:rl:{{{scope}}}", f"modelyard:rl:{{{scope}}}:tokens"]

    async def reserve(self, scope: str, limits: Limits, tokens: int) -> Reservation:
        entry_id = secrets.token_hex(6)
        args: list[str | int] = [
            int(WINDOW_S * 1000),
            limits.rpm or 0,
            limits.tpm or 0,
            tokens,
            entry_id,
        ]
        try:
            admitted, count, used, ms = await self._reserve(keys=self._keys(scope), args=args)
        except (RedisError, OSError) as exc:
            return self._unavailable(scope, limits, tokens, exc)
        if not admitted:
            raise rate_limited(scope, limits, int(ms) / 1000)
        reset = int(ms) / 1000
        return Reservation(
            scope=scope,
            id=entry_id,
            tokens=tokens,
            limit_requests=limits.rpm,
            remaining_requests=None if limits.rpm is None else max(limits.rpm - int(count), 0),
            reset_requests_s=reset,
            limit_tokens=limits.tpm,
            remaining_tokens=None if limits.tpm is None else max(limits.tpm - int(used), 0),
            reset_tokens_s=reset,
        )

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        if not reservation.id:
            return  # made while Redis was down
        try:
            await self._settle(
                keys=self._keys(reservation.scope)[1:], args=[reservation.id, tokens]
            )
        except (RedisError, OSError) as exc:
            self._warn(f"could not settle a rate-limit reservation: {exc}")

    def _unavailable(
        self, scope: str, limits: Limits, tokens: int, exc: BaseException
    ) -> Reservation:
        self._on_failure()
        policy = (
            "serving without limits (fail open)" if self._fail_open else "refusing (fail closed)"
        )
        self._warn(f"Redis rate limiter unreachable ({exc}); {policy}")
        if not self._fail_open:
            raise ServiceUnavailable(
                "The gateway's shared rate limiter is unavailable; try again shortly.",
                headers={"Retry-After": "1"},
            ) from exc
        return Reservation(scope, "", tokens, None, None, 0.0, None, None, 0.0)

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warning > 10:  # one line per 10 s, not one per request
            self._last_warning = now
            log.warning(message)

    async def close(self) -> None:
        await self._redis.aclose()
