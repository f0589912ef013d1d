"""Limits on what a caller may use: rate limits per (app, model) and spend limits per key.

Rate limits: `base` (the `RateLimiter` protocol, `Reservation`, the 429), kept by `memory`
(one process) or `redis_backend` (every replica) over the window of `window`. Spend
limits: `budget` (the guard), kept by `budget_memory` or `budget_redis`.
"""
