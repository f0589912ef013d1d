"""One admitted request: run it (whole or streamed) and report how it ended, once.

Use it as `async with call:` around the rendering: leaving the block settles the bill
with every observer, whatever happened (an error, the client leaving, a cut stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from modelyard.errors import GatewayError, ServerError, UpstreamError
from modelyard.ledger.billing import usage_cost
from modelyard.ledger.recorder import GenerationRecorder
from modelyard.limits.base import Reservation
from modelyard.limits.budget import BudgetReservation
from modelyard.providers.base import Completion, Delta, Embeddings, Finish, StreamEvent, Usage
from modelyard.providers.credentials import Credentials, using
from modelyard.routing.planner import Route
from modelyard.routing.sticky import Conversation
from modelyard.schema.chat import ChatRequest
from modelyard.schema.embeddings import EmbeddingsRequest
from modelyard.service.event_pump import EventPump, StreamQuiet
from modelyard.service.fallback import FallbackRoutes
from modelyard.service.observers import Outcome

if TYPE_CHECKING:
    from modelyard.service.service import GenerationService


@dataclass(frozen=True, slots=True)
class Billed:
    """The end of an answer: how it finished, and what it is billed for."""

    finish_reason: str
    native_finish_reason: str
    usage: Usage
    cost: Decimal
    native: bytes | None = None  # the upstream's own closing events, on a native call
    stop_sequence: str | None = None


class StreamRenderer(Protocol):
    """A front door's wire format for a streamed answer: the bytes of each event."""

    def delta(self, delta: Delta) -> bytes: ...

    def finish(self, billed: Billed) -> bytes: ...

    def quiet(self) -> bytes:
        """Nothing came for a keep-alive interval: the dialect's keep-alive."""
        ...

    def error(self, error: GatewayError) -> bytes:
        """The stream failed midway (the error is recorded already)."""
        ...


Write = Callable[[bytes], Awaitable[None]]


@dataclass(slots=True)
class StreamAnswer:
    """A stream that has started on `route`; `relay` sends it on to the client."""

    route: Route
    relay: Callable[[StreamRenderer, Write], Awaitable[None]]


class GenerationCall:
    def __init__(
        self,
        service: GenerationService,
        credentials: Credentials,
        request: ChatRequest,
        fallback: FallbackRoutes,
        recorder: GenerationRecorder,
        session: Conversation,
        budget: BudgetReservation | None,
        reservation: Reservation | None,
    ) -> None:
        self._service = service
        self._credentials = credentials
        self.request = request
        self._fallback = fallback
        self._recorder = recorder
        self._session = session
        self._budget = budget
        self._reservation = reservation
        self._pump: EventPump | None = None

    @property
    def generation_id(self) -> str:
        return self._recorder.generation_id

    @property
    def routes(self) -> list[Route]:
        return self._fallback.routes

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The generation id and the rate-limit window, for every answer of this call."""
        headers = [(b"x-generation-id", self.generation_id.encode())]
        if self._reservation is not None:
            headers += self._reservation.headers()
        return headers

    async def complete(self) -> tuple[Route, Completion, Decimal]:
        """The whole answer of the first route that gives one, and its cost."""
        recorder = self._recorder
        try:
            # The request's keys (the app's own, else the operator's) for its upstream calls.
            with using(self._credentials):
                route, result = await self._fallback.complete()
        except GatewayError as error:
            recorder.failed(error)
            raise
        cost = usage_cost(route.endpoint.price, result.usage)
        recorder.finished(result.usage, cost, result.finish_reason, result.native_finish_reason)
        recorder.output(result.content)
        return route, result, cost

    async def embed(self, request: EmbeddingsRequest) -> tuple[Route, Embeddings, Decimal]:
        """The vectors of the first route that gives them, and their cost."""
        recorder = self._recorder
        try:
            with using(self._credentials):
                route, result = await self._fallback.embed(request)
        except GatewayError as error:
            recorder.failed(error)
            raise
        cost = usage_cost(route.endpoint.price, result.usage)
        recorder.finished(result.usage, cost, "stop", "stop")
        return route, result, cost

    async def stream(self) -> StreamAnswer:
        """Open the stream on the first route that starts one; its events follow by relay."""
        try:
            with using(self._credentials):
                route, pump, first = await self._fallback.open_stream(self._service.keepalive_s)
        except GatewayError as error:
            self._recorder.failed(error)
            raise
        self._pump = pump

        async def relay(renderer: StreamRenderer, write: Write) -> None:
            await self._relay(route, pump, first, renderer, write)

        return StreamAnswer(route, relay)

    async def _relay(
        self,
        route: Route,
        pump: EventPump,
        first: StreamEvent | None,
        renderer: StreamRenderer,
        write: Write,
    ) -> None:
        """Each event recorded and written in the front door's format, in this one loop (a
        generator handing events to the door cost 2 µs a chunk); a failure midway is
        recorded and written as the door's error event."""
        recorder = self._recorder
        keepalive_s = self._service.keepalive_s
        event = first
        try:
            while True:
                if event is None:
                    try:
                        event = await pump.next(keepalive_s)
                    except StreamQuiet:
                        await write(renderer.quiet())
                        continue
                    if event is None:
                        raise UpstreamError("the provider ended the stream without finishing it")
                recorder.first_token()
                if isinstance(event, Delta):
                    recorder.relayed(event)
                    await write(renderer.delta(event))
                    event = None
                    continue
                assert isinstance(event, Finish)
                await write(renderer.finish(self._finished(route, event)))
                return
        except GatewayError as error:
            recorder.failed(error)
            await write(renderer.error(error))
        except (ValueError, RuntimeError, OSError) as exc:
            failure = ServerError(f"the stream failed: {exc}")
            recorder.failed(failure)
            await write(renderer.error(failure))

    def _finished(self, route: Route, finish: Finish) -> Billed:
        # An upstream that reports no usage is billed for what was relayed.
        usage = finish.usage if finish.usage.total_tokens else self._recorder.relayed_usage()
        cost = usage_cost(route.endpoint.price, usage)
        self._recorder.finished(usage, cost, finish.finish_reason, finish.native_finish_reason)
        return Billed(
            finish.finish_reason,
            finish.native_finish_reason,
            usage,
            cost,
            finish.native,
            finish.stop_sequence,
        )

    def client_left(self) -> None:
        """The client went away before the answer was complete (recorded as 499)."""
        self._recorder.cancelled = True

    async def __aenter__(self) -> GenerationCall:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, asyncio.CancelledError):
            self._recorder.cancelled = True
        try:
            if self._pump is not None:
                await self._pump.aclose()
        finally:
            await self.settle()

    async def settle(self) -> None:
        """Bill what the request used (what was relayed, if it was cut short) everywhere."""
        recorder = self._recorder
        outcome = Outcome(
            recorder.row(), recorder.route, self._session, self._budget, self._reservation
        )
        await self._service.report(outcome)
