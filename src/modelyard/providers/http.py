"""HTTP plumbing shared by the upstream adapters: one pooled client, timeouts, error mapping.

Every failure of an upstream call leaves here as an `UpstreamError` (or a subclass) that
keeps the upstream's status, a bounded piece of its body, and its Retry-After, and says
whether another endpoint may do better (`retryable`: connection errors, timeouts, 429, 5xx).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import orjson

from modelyard.catalog.spec import ProviderSpec

if TYPE_CHECKING:
    from modelyard.providers.registry import ProviderContext
from modelyard import __version__
from modelyard.errors import (
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from modelyard.providers.credentials import api_key
from modelyard.providers.http_client import (
    MAX_CONNECTIONS_PER_ORIGIN,
    ConnectionBroken,
    HttpClient,
    HttpError,
)
from modelyard.providers.sse import SseEvent, SseParser

__all__ = ["HttpAdapter", "UpstreamHttp", "api_key", "retry_after_seconds", "upstream_error"]

MAX_ERROR_BODY = 2000
USER_AGENT = f"modelyard/{__version__}"


class UpstreamHttp:
    """The upstream HTTP client of one adapter, created at start-up and reused."""

    def __init__(self, max_connections_per_origin: int = MAX_CONNECTIONS_PER_ORIGIN) -> None:
        self._client: HttpClient | None = None
        self._max_connections_per_origin = max_connections_per_origin

    async def start(self) -> None:
        self._client = HttpClient(max_connections_per_origin=self._max_connections_per_origin)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def client(self) -> HttpClient:
        assert self._client is not None, "provider not started"
        return self._client

    async def post_json(
        self, spec: ProviderSpec, url: str, headers: Mapping[str, str], body: Any
    ) -> Any:
        """POST a JSON body and return the decoded JSON answer (2xx), else raise."""
        request_headers = _headers(headers, "application/json")
        try:
            async with asyncio.timeout(spec.total_timeout_s):
                response = await self.client.post(
                    url,
                    request_headers,
                    json_bytes(body),
                    connect_timeout_s=spec.connect_timeout_s,
                )
                try:
                    raw = await response.read()
                finally:
                    response.release()
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{spec.id} did not answer within {spec.total_timeout_s:g} s", retryable=True
            ) from exc
        except HttpError as exc:
            raise UpstreamError(f"{spec.id}: connection failed: {exc}", retryable=True) from exc
        if response.status >= 400:
            raise upstream_error(spec, response.status, raw, response.headers)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                f"{spec.id} answered with invalid JSON: {raw[:200]!r}", upstream_status=200
            ) from exc

    async def post_sse(
        self, spec: ProviderSpec, url: str, headers: Mapping[str, str], body: Any
    ) -> AsyncGenerator[SseEvent, None]:
        """POST and yield the answer's SSE events. The first event must come within
        `first_token_timeout_s`, the whole stream within `total_timeout_s`. Closing the
        generator early closes the connection, which cancels the upstream's work.

        The deadlines apply to each wait inside, not across a `yield`: whichever task
        takes the next event, the timeout interrupts that wait only."""
        now = asyncio.get_running_loop().time()
        total_at = now + spec.total_timeout_s
        first_at = min(now + spec.first_token_timeout_s, total_at)
        first = True
        try:
            async with asyncio.timeout_at(first_at):
                response = await self.client.post(
                    url,
                    _headers(headers, "text/event-stream"),
                    json_bytes(body),
                    connect_timeout_s=spec.connect_timeout_s,
                )
            try:
                if response.status >= 400:
                    async with asyncio.timeout_at(total_at):
                        raw = await response.read()
                    raise upstream_error(spec, response.status, raw, response.headers)
                parser = SseParser()
                while True:
                    async with asyncio.timeout_at(first_at if first else total_at):
                        piece = await response.next_piece()
                    if piece is None:
                        return
                    for event in parser.feed(piece):
                        first = False
                        yield event
            finally:
                response.release()
        except TimeoutError as exc:
            limit = spec.first_token_timeout_s if first else spec.total_timeout_s
            what = "start streaming" if first else "finish streaming"
            raise UpstreamTimeout(
                f"{spec.id} did not {what} within {limit:g} s", retryable=first
            ) from exc
        except ConnectionBroken as exc:
            raise UpstreamError(f"{spec.id}: the stream broke off: {exc}", retryable=first) from exc
        except HttpError as exc:
            raise UpstreamError(f"{spec.id}: connection failed: {exc}", retryable=first) from exc


class HttpAdapter:
    """What every HTTP adapter shares: one pooled client, opened and closed with the app."""

    def __init__(self, context: ProviderContext) -> None:
        self._http = UpstreamHttp(context.upstream_max_connections)

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()


def _headers(headers: Mapping[str, str], accept: str) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/json"),
        ("Accept", accept),
        ("User-Agent", USER_AGENT),
        *headers.items(),
    ]


def json_bytes(body: Any) -> bytes:
    """The request body as JSON. orjson refuses integers beyond 64 bits, which a client's
    tool schema may hold (msgspec, slower here, writes them)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return msgspec.json.encode(body)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def upstream_error(
    spec: ProviderSpec, status: int, raw: bytes, headers: Mapping[str, str]
) -> UpstreamError:
    """The error for an upstream's 4xx/5xx answer, with its own message when it sent one."""
    message = _upstream_message(raw)
    text = f"{spec.id} returned HTTP {status}: {message}"
    metadata = {"provider_name": spec.id, "raw": raw[:MAX_ERROR_BODY].decode("utf-8", "replace")}
    if status == 429:
        return UpstreamRateLimited(
            text, retry_after=retry_after_seconds(headers), retryable=True, metadata=metadata
        )
    if status == 408:
        return UpstreamTimeout(text, upstream_status=408, retryable=True, metadata=metadata)
    if status in (400, 404, 413, 422):
        return UpstreamRejected(text, upstream_status=status, retryable=False, metadata=metadata)
    # 5xx (and Anthropic's 529 overloaded) may be fine elsewhere, and so may a provider
    # whose key we hold was refused (401/403).
    return UpstreamError(text, upstream_status=status, retryable=True, metadata=metadata)


def _upstream_message(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:200].decode("utf-8", "replace") or "(empty body)"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return raw[:200].decode("utf-8", "replace")
