"""Spend reservations in Redis, shared by every replica.

Per key and period three keys under one hash tag: the spend (an integer count of 1e-10
USD, the ledger's unit on SQLite, so money stays exact), a hash of the holds of requests
in flight (and their total under "="), and a sorted set of when each hold expires, so a
replica that dies mid-request does not keep its holds for ever. One script checks
spent + held + ask against the limit and holds, atomically; another drops a hold and adds
the real cost. When the spend key is absent (a new period, or Redis lost it) it is loaded
from the ledger with SET NX, expiring at the period's end.

If Redis cannot be reached the rate limiter's failure policy applies: "open" falls back
to this process's own reservations (budget_memory), "closed" answers 503.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from modelyard.errors import ServiceUnavailable
from modelyard.limits.budget import LedgerSpend, SpendPeriod, Standing
from modelyard.limits.budget_memory import MemoryBudget
from modelyard.limits.redis_client import RedisClient, RedisError, Script
from modelyard.limits.warnings import OccasionalWarning

log = logging.getLogger(__name__)

UNIT = Decimal("1e-10")  # USD per integer unit
# A hold outlives any request; one left by a replica that died is dropped after this.
HOLD_TTL_MS = 15 * 60 * 1000
# A total limit (no period) is reloaded from the ledger this often.
TOTAL_TTL_MS = 24 * 3600 * 1000

# KEYS: spent, holds (hash: id -> units, "=" -> total), expiries (zset: id by ms).
# ARGV: limit, amount, hold id, hold ttl ms. Returns {status, spent, held}: status -1
# when the spend is not loaded, 0 refused, 1 held. Amounts are changed only by
# INCRBY/HINCRBY on their decimal strings, so they stay exact 64-bit integers (Lua's
# doubles are only compared: exact up to 2^53 units, $900,719).
RESERVE = Script("""
local spent = redis.call('GET', KEYS[1])
if not spent then return {-1, '0', '0'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, id in ipairs(expired) do
  local amount = redis.call('HGET', KEYS[2], id)
  if amount then
    redis.call('HDEL', KEYS[2], id)
    if amount ~= '0' then redis.call('HINCRBY', KEYS[2], '=', '-' .. amount) end
  end
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) end
local held = redis.call('HGET', KEYS[2], '=') or '0'
local limit, amount = tonumber(ARGV[1]), tonumber(ARGV[2])
local s, h = tonumber(spent), tonumber(held)
if s >= limit or s + h + amount > limit then return {0, spent, held} end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('HINCRBY', KEYS[2], '=', ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {1, spent, held}
""")

# KEYS as above. ARGV: hold id, cost in units.
SETTLE = Script("""
local amount = redis.call('HGET', KEYS[2], ARGV[1])
if amount then
  redis.call('HDEL', KEYS[2], ARGV[1])
  if amount ~= '0' then redis.call('HINCRBY', KEYS[2], '=', '-' .. amount) end
  redis.call('ZREM', KEYS[3], ARGV[1])
end
if ARGV[2] ~= '0' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCRBY', KEYS[1], ARGV[2])
end
return 0
""")


def to_units(amount: Decimal, *, round_up: bool = False) -> int:
    rounding = ROUND_CEILING if round_up else ROUND_HALF_EVEN
    return int((amount / UNIT).to_integral_value(rounding=rounding))


def from_units(units: bytes | str | int) -> Decimal:
    return Decimal(int(units)) * UNIT


@dataclass(slots=True)
class RedisHold:
    budget: RedisBudget
    keys: list[str]
    hold_id: str

    async def settle(self, cost: Decimal) -> None:
        await self.budget.settle(self.keys, self.hold_id, cost)


class RedisBudget:
    def __init__(
        self,
        redis: RedisClient,
        ledger_spend: LedgerSpend,
        *,
        fail_open: bool,
        fallback: MemoryBudget,
        hold_ttl_ms: int = HOLD_TTL_MS,
    ) -> None:
        self._redis = redis
        self._hold_ttl_ms = hold_ttl_ms
        self._ledger_spend = ledger_spend
        self._fail_open = fail_open
        self._fallback = fallback
        self._warn = OccasionalWarning(log)

    @staticmethod
    def keys(period: SpendPeriod) -> list[str]:
        since = period.start.date().isoformat() if period.start else "total"
        tag = f"modelyard:budget:{{{period.key_id}:{since}}}"
        return [tag, f"{tag}:holds", f"{tag}:expiries"]

    async def reserve(self, period: SpendPeriod, hold_id: str, amount: Decimal) -> Standing:
        keys = self.keys(period)
        args: list[str | int] = [
            to_units(period.limit),
            to_units(amount, round_up=True),
            hold_id,
            self._hold_ttl_ms,
        ]
        try:
            status, spent, held = await self._redis.evalsha(RESERVE, keys, args)
            if status == -1:
                await self._load(period, keys[0])
                status, spent, held = await self._redis.evalsha(RESERVE, keys, args)
        except RedisError as exc:
            self._unavailable(exc)
            return await self._fallback.reserve(period, hold_id, amount)
        hold = RedisHold(self, keys, hold_id) if status == 1 else None
        return Standing(hold, from_units(spent), from_units(held))

    async def settle(self, keys: list[str], hold_id: str, cost: Decimal) -> None:
        try:
            await self._redis.evalsha(SETTLE, keys, [hold_id, to_units(cost)])
        except RedisError as exc:
            # The hold expires by itself; the cost is in the ledger for the next load.
            self._warn(f"could not settle a spend reservation in Redis: {exc}")

    async def spent(self, period: SpendPeriod) -> Decimal:
        key = self.keys(period)[0]
        try:
            units = await self._redis.call("GET", key)
            if units is None:
                units = await self._load(period, key)
        except RedisError as exc:
            self._unavailable(exc)
            return await self._fallback.spent(period)
        return from_units(units)

    async def _load(self, period: SpendPeriod, key: str) -> bytes:
        """Start the period's spend from the ledger, unless another replica just did."""
        units = to_units(await self._ledger_spend(period.key_id, period.start))
        if period.end is not None:
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            ttl_ms = max(int(period.end.timestamp() * 1000) - now_ms, 1)
        else:
            ttl_ms = TOTAL_TTL_MS
        await self._redis.call("SET", key, units, "NX", "PX", ttl_ms)
        current: bytes | None = await self._redis.call("GET", key)
        return current if current is not None else str(units).encode()

    def _unavailable(self, exc: RedisError) -> None:
        if not self._fail_open:
            raise ServiceUnavailable(
                "The gateway's shared spend limits are unavailable; try again shortly.",
                headers={"Retry-After": "1"},
            ) from exc
        self._warn(f"Redis unreachable for spend limits ({exc}); reserving in this process")

    async def close(self) -> None:
        await self._redis.close()
