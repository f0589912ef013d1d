"""The limits the server's edge holds every connection to, taken from the settings once."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.config import Settings

# Bytes read and thrown away after an early answer (413, 431, 408) before closing: enough
# for a client that writes its whole body before reading to see the answer, not a sink.
LINGER_BYTES = 64 * 1024 * 1024
# The linger after answering a client that was too slow (408) or one too many (503): it
# sends little, so a second is enough to read the answer, and the descriptor is freed soon.
BRIEF_LINGER_S = 1.0

_VARIABLES = {
    "max_head_bytes": "MODELYARD_MAX_HEADER_BYTES",
    "head_timeout_s": "MODELYARD_HEADER_TIMEOUT_S",
    "body_timeout_s": "MODELYARD_BODY_TIMEOUT_S",
    "linger_s": "MODELYARD_LINGER_S",
    "max_connections": "MODELYARD_MAX_CONNECTIONS",
}


@dataclass(frozen=True)
class EdgeLimits:
    max_head_bytes: int = 32 * 1024
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    linger_s: float = 5.0
    max_connections: int = 1024

    def __post_init__(self) -> None:
        for name, variable in _VARIABLES.items():
            if getattr(self, name) <= 0:
                raise ValueError(f"{variable} must be greater than 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(
            max_head_bytes=settings.max_header_bytes,
            head_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            linger_s=settings.linger_s,
            max_connections=settings.max_connections,
        )
