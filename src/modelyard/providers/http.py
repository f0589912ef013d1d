"""HTTP plumbing shared by the upstream adapters: one pooled session, timeouts, error mapping.

Every failure of an upstream call leaves here as an `UpstreamError` (or a subclass) that
keeps the upstream's status, a bounded piece of its body, and its Retry-After, and says
whether another endpoint may do better (`retryable`: connection errors, timeouts, 429, 5xx).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from modelyard.catalog.spec import ProviderSpec

if TYPE_CHECKING:
    from modelyard.providers.registry import ProviderContext
from modelyard.errors import (
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from modelyard.providers.credentials import api_key
from modelyard.providers.sse import SseEvent, SseParser

__all__ = ["HttpAdapter", "UpstreamHttp", "api_key", "retry_after_seconds", "upstream_error"]

MAX_ERROR_BODY = 2000


class UpstreamHttp:
    """The aiohttp session of one provider kind, created at start-up and reused."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "provider not started"
        return self._session

    async def post_json(
        self, spec: ProviderSpec, url: str, headers: Mapping[str, str], body: Any
    ) -> Any:
        """POST a JSON body and return the decoded JSON answer (2xx), else raise."""
        timeout = aiohttp.ClientTimeout(
            total=spec.total_timeout_s, sock_connect=spec.connect_timeout_s
        )
        try:
            async with self.session.post(
                url, data=orjson.dumps(body), headers=_json_headers(headers), timeout=timeout
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise upstream_error(spec, response.status, raw, response.headers)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{spec.id} did not answer within {spec.total_timeout_s:g} s", retryable=True
            ) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{spec.id}: connection failed: {exc}", retryable=True) from exc
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
        generator early closes the connection, which cancels the upstream's work."""
        timeout = aiohttp.ClientTimeout(
            total=spec.total_timeout_s, sock_connect=spec.connect_timeout_s
        )
        headers = {**_json_headers(headers), "Accept": "text/event-stream"}
        first = True
        try:
            async with asyncio.timeout(spec.first_token_timeout_s) as first_deadline:
                response = await self.session.post(
                    url, data=orjson.dumps(body), headers=headers, timeout=timeout
                )
            try:
                if response.status >= 400:
                    raw = await response.read()
                    raise upstream_error(spec, response.status, raw, response.headers)
                parser = SseParser()
                first_deadline = asyncio.timeout(spec.first_token_timeout_s)
                async with first_deadline:
                    async for chunk in response.content.iter_any():
                        for event in parser.feed(chunk):
                            if first:
                                first = False
                                first_deadline.reschedule(None)
                            yield event
            finally:
                response.release()
                response.close()
        except TimeoutError as exc:
            limit = spec.first_token_timeout_s if first else spec.total_timeout_s
            what = "start streaming" if first else "finish streaming"
            raise UpstreamTimeout(
                f"{spec.id} did not {what} within {limit:g} s", retryable=first
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamError(f"{spec.id}: the stream broke off: {exc}", retryable=first) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{spec.id}: connection failed: {exc}", retryable=first) from exc


class HttpAdapter:
    """What every HTTP adapter shares: one pooled session, opened and closed with the app."""

    def __init__(self, context: ProviderContext) -> None:
        self._http = UpstreamHttp()

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()


def _json_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", **headers}


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
