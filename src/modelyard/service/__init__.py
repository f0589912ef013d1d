"""The request service: one pipeline for every front door, with no wire format inside.

A front door (api/chat.py, api/messages.py) parses its dialect into a `ChatRequest`, hands
it to `GenerationService.begin` with the transport facts (`CallInfo`), and renders what the
returned `GenerationCall` gives back. Planning, budgets, limits, fallback and the fan-out of
the outcome to ledger, metrics, budget, health, sticky routing and the limiter happen here.
"""

from modelyard.service.call import Billed, GenerationCall, StreamAnswer, StreamRenderer
from modelyard.service.info import CallInfo
from modelyard.service.service import GenerationService

__all__ = [
    "Billed",
    "CallInfo",
    "GenerationCall",
    "GenerationService",
    "StreamAnswer",
    "StreamRenderer",
]
