"""Collects what happens to one request and turns it into its ledger row."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from modelyard.access.caller import Caller
from modelyard.catalog.parameters import SAMPLING_FIELDS
from modelyard.errors import GatewayError
from modelyard.ledger.attribution import clean_attribution
from modelyard.ledger.billing import RelayedTokens, usage_cost
from modelyard.providers.base import Delta, Usage
from modelyard.providers.credentials import Credentials
from modelyard.routing.filters import min_prompt_tokens
from modelyard.routing.planner import Route
from modelyard.schema.chat import ChatRequest
from modelyard.store.records import Attempt, Generation

# Sampling parameters worth keeping per request (they feed "recommended parameters").
RECORDED_PARAMETERS = (*SAMPLING_FIELDS, "max_tokens", "max_completion_tokens")


class GenerationRecorder:
    def __init__(
        self,
        generation_id: str,
        caller: Caller,
        request: ChatRequest,
        *,
        credentials: Credentials,
        api: str = "chat.completions",
        http_referer: str | None,
        x_title: str | None,
        log_content: bool,
    ) -> None:
        self.generation_id = generation_id
        self._api = api
        self._credentials = credentials
        self._caller = caller
        self._request = request
        self._referer, self._title = clean_attribution(http_referer, x_title)
        self._log_content = log_content and not caller.zdr
        self._created_at = datetime.now(UTC)
        self._started = time.perf_counter()
        self._attempt_started = self._started
        self._first_token: float | None = None
        self._finished: float | None = None
        self.attempts: list[Attempt] = []
        self.route: Route | None = None
        self.status = 0
        self.error: str | None = None
        self.usage = Usage()
        self.cost = Decimal(0)
        self.finish_reason: str | None = None
        self.native_finish_reason: str | None = None
        self.cancelled = False
        self._output: list[str] = []
        self._relayed = RelayedTokens()

    def start_attempt(self) -> None:
        self._attempt_started = time.perf_counter()

    def attempt_failed(self, route: Route, error: GatewayError) -> None:
        status = getattr(error, "upstream_status", None) or error.status
        self.attempts.append(
            Attempt(
                route.endpoint.provider.id,
                status,
                error.message,
                self._ms_since(self._attempt_started),
            )
        )

    def served_by(self, route: Route) -> None:
        self.route = route
        self.attempts.append(
            Attempt(route.endpoint.provider.id, 200, None, self._ms_since(self._attempt_started))
        )

    def first_token(self) -> None:
        if self._first_token is None:
            self._first_token = time.perf_counter()

    def output(self, text: str | None) -> None:
        if self._log_content and text:
            self._output.append(text)

    def relayed(self, delta: Delta) -> None:
        """A piece of a streamed answer was sent on to the client."""
        self._relayed.add(delta)
        self.output(delta.content)

    def relayed_usage(self) -> Usage:
        """What the stream sent so far, counted here (for when the upstream never said)."""
        return self._relayed.usage(min_prompt_tokens(self._request))

    def _billed(self) -> tuple[Usage, Decimal]:
        """A stream that did not finish (cut by the client, failed midway) is billed for
        what it relayed; otherwise the upstream's usage stands."""
        route = self.route
        if self._finished is not None or route is None or not self._relayed.completion:
            return self.usage, self.cost
        usage = self.relayed_usage()
        return usage, usage_cost(route.endpoint.price, usage)

    def finished(
        self, usage: Usage, cost: Decimal, finish_reason: str, native_finish_reason: str
    ) -> None:
        self.first_token()
        self._finished = time.perf_counter()
        self.status = 200
        self.usage = usage
        self.cost = cost
        self.finish_reason = finish_reason
        self.native_finish_reason = native_finish_reason

    def failed(self, error: GatewayError) -> None:
        self.status = error.status
        self.error = error.message
        self.finish_reason = self.finish_reason or "error"

    def row(self) -> Generation:
        route = self.route
        request = self._request
        end = self._finished or time.perf_counter()
        latency = self._ms_since(self._started, self._first_token) if self._first_token else None
        generation_time = (
            (end - self._first_token) * 1000 if self._first_token is not None else None
        )
        params: dict[str, Any] = {
            name: value
            for name in RECORDED_PARAMETERS
            if (value := getattr(request, name)) is not None
        }
        status = self.status or (499 if self.cancelled else 500)
        usage, cost = self._billed()
        return Generation(
            id=self.generation_id,
            created_at=self._created_at,
            app_id=self._caller.app_id,
            key_id=self._caller.key_id,
            model=route.model.id if route else (request.model_names() or ["?"])[0],
            provider=route.endpoint.provider.id if route else None,
            endpoint=route.endpoint.id if route else None,
            status=status,
            error=self.error,
            tokens_prompt=usage.prompt_tokens,
            tokens_completion=usage.completion_tokens,
            tokens_cached=usage.cached_tokens,
            tokens_cache_write=usage.cache_write_tokens,
            tokens_reasoning=usage.reasoning_tokens,
            cost=cost,
            latency_ms=latency,
            generation_time_ms=generation_time,
            streamed=request.stream,
            cancelled=self.cancelled,
            finish_reason=self.finish_reason,
            native_finish_reason=self.native_finish_reason,
            is_byok=route is not None and self._credentials.is_own(route.endpoint.provider),
            http_referer=self._referer,
            x_title=self._title,
            params=params,
            attempts=self.attempts,
            prompt_text=_prompt_text(request) if self._log_content else None,
            output_text="".join(self._output) if self._log_content else None,
            api=self._api,
        )

    @staticmethod
    def _ms_since(start: float, end: float | None = None) -> float:
        return ((end if end is not None else time.perf_counter()) - start) * 1000


def _prompt_text(request: ChatRequest) -> str:
    import msgspec

    return msgspec.json.encode(request.messages).decode()
