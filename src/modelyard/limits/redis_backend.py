"""Rate limits shared by every replica through Redis.

Check-and-consume is one Lua script, so concurrent requests on any number of gateways
cannot both take the last slot; it reads Redis's own clock, so replicas with skewed clocks
still agree on the window. If Redis cannot be reached the `failure_policy` decides: "open"
serves the request unlimited, "closed" answers 503. Either way a log line and a metric say so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from modelyard.errors import ServiceUnavailable
from modelyard.limits.base import Limits, Reservation, rate_limited
from modelyard.limits.redis_client import RedisClient, RedisError, Script
from modelyard.limits.warnings import OccasionalWarning
from modelyard.limits.window import BUCKET_MS, WINDOW_MS

log = logging.getLogger(__name__)

# The window of limits/window.py in Redis. KEYS[1]: hash with the totals R (requests) and
# T (tokens) and per bucket b the fields r:b and t:b; KEYS[2]: zset of the buckets held.
# ARGV: bucket ms, window ms, rpm (0: none), tpm (0: none), tokens.
# Returns {admitted, requests in window, tokens in window, ms (retry-after or reset),
# bucket}. Each bucket is dropped once, when it leaves the window: a check costs the same
# however many requests the window holds (the buckets are walked only to tell a refused
# request how long to wait).
RESERVE = Script("""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local size, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm, tokens = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local requests = tonumber(redis.call('HGET', KEYS[1], 'R') or '0')
local used = tonumber(redis.call('HGET', KEYS[1], 'T') or '0')
local last_gone = math.floor((now - window) / size)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', last_gone)
for _, b in ipairs(gone) do
  requests = requests - tonumber(redis.call('HGET', KEYS[1], 'r:' .. b) or '0')
  used = used - tonumber(redis.call('HGET', KEYS[1], 't:' .. b) or '0')
  redis.call('HDEL', KEYS[1], 'r:' .. b, 't:' .. b)
end
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', last_gone)
  redis.call('HSET', KEYS[1], 'R', requests, 'T', used)
end
local requests_over = rpm > 0 and requests + 1 - rpm or 0
local tokens_over = tpm > 0 and used + tokens - tpm or 0
if requests_over > 0 or tokens_over > 0 then
  local wait = 0
  for _, b in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if requests_over <= 0 and tokens_over <= 0 then break end
    wait = math.max(wait, tonumber(b) * size + window - now)
    requests_over = requests_over - tonumber(redis.call('HGET', KEYS[1], 'r:' .. b) or '0')
    tokens_over = tokens_over - tonumber(redis.call('HGET', KEYS[1], 't:' .. b) or '0')
  end
  if tokens_over > 0 then wait = math.max(wait, window) end
  if wait > 0 then return {0, requests, used, wait, 0} end
end
local bucket = math.floor(now / size)
redis.call('HINCRBY', KEYS[1], 'r:' .. bucket, 1)
redis.call('HINCRBY', KEYS[1], 't:' .. bucket, tokens)
redis.call('HSET', KEYS[1], 'R', requests + 1, 'T', used + tokens)
redis.call('ZADD', KEYS[2], bucket, bucket)
redis.call('PEXPIRE', KEYS[1], window + size)
redis.call('PEXPIRE', KEYS[2], window + size)
local oldest = tonumber(redis.call('ZRANGE', KEYS[2], 0, 0)[1])
return {1, requests + 1, used + tokens, oldest * size + window - now, bucket}
""")

# KEYS[1]: the hash above. ARGV: bucket, tokens to add (negative: given back), repeated.
SETTLE = Script("""
for i = 1, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], 'r:' .. ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[1], 't:' .. ARGV[i], ARGV[i + 1])
    redis.call('HINCRBY', KEYS[1], 'T', ARGV[i + 1])
  end
end
return 0
""")


class RedisRateLimiter:
    def __init__(
        self,
        url: str,
        *,
        failure_policy: str = "open",
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._redis = RedisClient(url, timeout_s=1.0)
        # Settlements made in one turn of the event loop go in one script call per scope.
        self._unsettled: dict[str, dict[str, int]] = {}  # scope -> bucket -> tokens
        self._settling: asyncio.Task[None] | None = None
        self._fail_open = failure_policy == "open"
        self._on_failure = on_failure
        self._warn = OccasionalWarning(log)

    @staticmethod
    def _keys(scope: str) -> list[str]:
        # One hash tag, so both keys land on the same Redis Cluster slot.
        return [f"modelyard:rl2:{{{scope}}}", f"modelyard:rl2:{{{scope}}}:buckets"]

    async def reserve(self, scope: str, limits: Limits, tokens: int) -> Reservation:
        args = [BUCKET_MS, WINDOW_MS, limits.rpm or 0, limits.tpm or 0, tokens]
        try:
            admitted, count, used, ms, bucket = await self._redis.evalsha(
                RESERVE, self._keys(scope), args
            )
        except RedisError as exc:
            return self._unavailable(scope, limits, tokens, exc)
        if not admitted:
            raise rate_limited(scope, limits, int(ms) / 1000)
        return Reservation.admitted(
            scope, str(int(bucket)), tokens, limits, int(count), int(used), int(ms) / 1000
        )

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        """Returns once Redis has the settlement (with the others of this loop turn)."""
        delta = tokens - reservation.tokens
        if not reservation.id or not delta:
            return  # made while Redis was down, or nothing to correct
        buckets = self._unsettled.setdefault(reservation.scope, {})
        buckets[reservation.id] = buckets.get(reservation.id, 0) + delta
        if self._settling is None:
            # Starts on the next loop turn, by when this turn's settlements have joined.
            self._settling = asyncio.ensure_future(self._send_settlements())
        await asyncio.shield(self._settling)

    async def _send_settlements(self) -> None:
        unsettled, self._unsettled = self._unsettled, {}
        self._settling = None
        calls = [
            self._redis.evalsha(
                SETTLE, self._keys(scope)[:1], [v for pair in buckets.items() for v in pair]
            )
            for scope, buckets in unsettled.items()
        ]
        for outcome in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(outcome, RedisError):
                self._warn(f"could not settle rate-limit reservations: {outcome}")
            elif isinstance(outcome, BaseException):
                raise outcome

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
        return Reservation.unlimited(scope, tokens)

    async def close(self) -> None:
        if self._settling is not None:
            await self._settling
        await self._redis.close()
