"""Sticky routing: keep a conversation on the endpoint that holds its prompt cache.

A provider's prompt cache only pays off if the next turn of the conversation goes back to
it. So once an endpoint whose cache reads cost less than prompt tokens has served a
conversation, that conversation's next requests try it first, until it has been idle for
`idle_s` (10 minutes, as long as Anthropic keeps an ephemeral cache entry warm at most).
Explicit `provider.order` or `provider.sort` still win.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from modelyard.catalog import Endpoint
from modelyard.schema.chat import ChatRequest, SystemMessage, UserMessage

IDLE_S = 600.0
MAX_SESSIONS = 100_000


def conversation_key(request: ChatRequest, header_session: str | None) -> str:
    """The client's session id, else a hash of the first system and first user message."""
    explicit = request.session_id or header_session
    if explicit:
        return "id:" + explicit
    digest = hashlib.sha256()
    for kind in (SystemMessage, UserMessage):
        first = next((m for m in request.messages if isinstance(m, kind)), None)
        if first is not None:
            content = first.content
            text = content if isinstance(content, str) else repr(content)
            digest.update(text.encode("utf-8", "replace"))
        digest.update(b"\x00")
    return "h:" + digest.hexdigest()[:32]


class Conversation:
    """The key of the conversation a request belongs to (per app, so one app cannot steer
    another's routing), worked out on first use: hashing the first messages is wasted on
    a model none of whose endpoints keeps a prompt cache."""

    __slots__ = ("_app_id", "_header_session", "_key", "_request")

    def __init__(self, app_id: str | None, request: ChatRequest, header_session: str | None):
        self._app_id = app_id
        self._request = request
        self._header_session = header_session
        self._key: str | None = None

    def __call__(self) -> str:
        if self._key is None:
            found = conversation_key(self._request, self._header_session)
            self._key = f"{self._app_id}|{found}"
        return self._key


def caches_cheaply(endpoint: Endpoint) -> bool:
    price = endpoint.price
    return price.cache_read is not None and price.cache_read < price.prompt


class StickySessions:
    def __init__(self, idle_s: float = IDLE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_s = idle_s
        self._clock = clock
        self._sessions: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def endpoint_for(self, key: str) -> str | None:
        entry = self._sessions.get(key)
        if entry is None:
            return None
        endpoint_id, last_used = entry
        if self._clock() - last_used > self._idle_s:
            del self._sessions[key]
            return None
        return endpoint_id

    def remember(self, key: str, endpoint: Endpoint) -> None:
        if not caches_cheaply(endpoint):
            return
        self._sessions[key] = (endpoint.id, self._clock())
        self._sessions.move_to_end(key)
        while len(self._sessions) > MAX_SESSIONS:  # oldest activity goes first
            self._sessions.popitem(last=False)
