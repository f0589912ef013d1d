"""Stats read from the generations ledger: uptime, latency, throughput, usage, parameters."""

from modelyard.stats.endpoints import EndpointStats
from modelyard.stats.parameters import ParameterSpread
from modelyard.stats.percentiles import Percentiles
from modelyard.stats.service import ModelUsage, Stats
from modelyard.stats.usage import Ranked

__all__ = [
    "EndpointStats",
    "ModelUsage",
    "ParameterSpread",
    "Percentiles",
    "Ranked",
    "Stats",
]
