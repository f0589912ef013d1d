"""POST /v1/chat/completions: parse, authenticate, route with fallback, answer JSON or SSE.

A raw ASGI handler, because it is the hot path and needs two things Starlette's request
helpers hide: a body read with a size cap, and a watch on the connection so that a client
that goes away cancels its generation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
from starlette.types import Receive, Scope, Send

from modelyard.api.auth import Caller
from modelyard.api.event_pump import EventPump, StreamQuiet
from modelyard.api.http import ClientGone, header, read_body, send_error, send_json
from modelyard.errors import (
    GatewayError,
    InvalidRequest,
    NoProviderAvailable,
    ServerError,
    UpstreamError,
    UpstreamRateLimited,
)
from modelyard.gateway import Gateway
from modelyard.ledger.billing import usage_cost
from modelyard.ledger.recorder import GenerationRecorder
from modelyard.limits.base import Limits, Reservation
from modelyard.limits.budget import BudgetReservation
from modelyard.limits.budget_estimate import prompt_ceiling
from modelyard.providers.base import Delta, Finish, StreamEvent
from modelyard.providers.credentials import app_provider_keys
from modelyard.routing.health import HealthTracker
from modelyard.routing.planner import Route
from modelyard.routing.sticky import Conversation
from modelyard.schema.chat import ChatRequest, parse_chat_request
from modelyard.schema.image_urls import check_image_urls
from modelyard.schema.response import (
    DONE,
    KEEPALIVE,
    ChunkWriter,
    completion_body,
    generation_id,
)

T = TypeVar("T")
# How long a request runs before its connection is watched for a disconnect.
WATCH_AFTER_S = 0.02

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ChatCompletions:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["method"] != "POST":
                raise InvalidRequest("Use POST for /v1/chat/completions.")
            client = scope.get("client")
            caller = await self._gateway.auth.caller(
                header(scope, b"authorization"), client=client[0] if client else None
            )
        except GatewayError as error:
            await send_error(send, error)
            return
        await self.handle(scope, receive, send, caller)

    async def handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        caller: Caller,
        model_override: str | None = None,
    ) -> None:
        """Serve a chat completion for an authenticated caller (also used by the admin API)."""
        gateway = self._gateway
        try:
            body = await read_body(scope, receive, gateway.settings.max_body_bytes)
            request = parse_chat_request(body, model_override=model_override)
            await check_image_urls(request, gateway.image_urls)
            if (header(scope, b"x-prompt-caching") or "").strip().lower() == "false":
                request = msgspec.structs.replace(request, prompt_caching=False)
        except ClientGone:
            return
        except GatewayError as error:
            await send_error(send, error)
            return
        # Bounded ledger queue: wait here (rarely) rather than accept work we cannot record.
        await gateway.ledger.room()
        recorder = GenerationRecorder(
            generation_id(),
            caller,
            request,
            http_referer=header(scope, b"http-referer") or header(scope, b"referer"),
            x_title=header(scope, b"x-title"),
            log_content=gateway.settings.log_content,
        )
        session = Conversation(caller.app_id, request, header(scope, b"x-session-id"))
        try:
            routes = gateway.planner.plan(
                request,
                caller.allowed_models,
                zdr_key=caller.zdr,
                own_keys=caller.provider_keys,
                session=session,
            )
        except NoProviderAvailable as error:
            recorder.failed(error)
            row = recorder.row()
            gateway.ledger.record(row)
            gateway.metrics.observe(row)
            await send_error(send, error)
            return
        except GatewayError as error:
            await send_error(send, error)
            return
        try:
            budget = await gateway.budget.reserve(
                caller.key, recorder.generation_id, request, routes
            )
        except GatewayError as error:
            await send_error(send, error)
            return
        try:
            reservation = await self._reserve(caller, request, routes[0])
        except GatewayError as error:
            if budget is not None:
                await budget.release()
            await send_error(send, error)
            return
        headers = reservation.headers() if reservation else []
        respond = self._stream if request.stream else self._complete
        try:
            # The app's own provider keys apply to every upstream call of this request.
            with app_provider_keys(caller.provider_keys):
                await _cancel_on_disconnect(
                    receive, respond(request, routes, send, recorder, headers)
                )
        finally:
            await self._settle(recorder, budget, reservation, session)

    async def _settle(
        self,
        recorder: GenerationRecorder,
        budget: BudgetReservation | None,
        reservation: Reservation | None,
        session: Conversation,
    ) -> None:
        """Bill what the request used (what was relayed, if it was cut short) everywhere:
        ledger, metrics, the key's budget and the rate-limit window."""
        gateway = self._gateway
        row = recorder.row()
        gateway.ledger.record(row)
        gateway.budget.recorded(row)
        gateway.metrics.observe(row)
        if budget is not None:
            await budget.settle(row.cost)
        if row.status == 200 and row.endpoint is not None:
            gateway.planner.health.observe(row.endpoint, row.latency_ms, row.throughput)
        if row.status == 200 and recorder.route is not None:
            gateway.planner.served(session, recorder.route)
        if reservation is not None:
            await gateway.limiter.settle(reservation, row.tokens_prompt + row.tokens_completion)

    async def _reserve(
        self, caller: Caller, request: ChatRequest, route: Route
    ) -> Reservation | None:
        """Count the request against its app's limits for the model (none for the admin)."""
        if caller.app is None:
            return None
        key, model = caller.key, route.model.spec
        limits = Limits(
            rpm=(key.rpm if key and key.rpm else None) or model.rpm,
            tpm=(key.tpm if key and key.tpm else None) or model.tpm,
        )
        if limits.rpm is None and limits.tpm is None:
            return None
        # Prompt estimate plus the most the answer may use; settled on real usage after.
        estimate = prompt_ceiling(request) + (request.output_limit or route.endpoint.max_output)
        scope = f"{caller.app.id}:{route.model.id}"
        return await self._gateway.limiter.reserve(scope, limits, estimate)

    async def _complete(
        self,
        request: ChatRequest,
        routes: list[Route],
        send: Send,
        recorder: GenerationRecorder,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        try:
            route, result = await _first_success(
                request,
                routes,
                recorder,
                self._gateway.planner.health,
                lambda r: r.provider.complete(request, r.endpoint),
            )
        except GatewayError as error:
            recorder.failed(error)
            await send_error(send, error)
            return
        except asyncio.CancelledError:
            recorder.cancelled = True
            raise
        cost = usage_cost(route.endpoint.price, result.usage)
        recorder.finished(result.usage, cost, result.finish_reason, result.native_finish_reason)
        recorder.output(result.content)
        gen_id = recorder.generation_id
        body = completion_body(
            gen_id, int(time.time()), route.model.id, route.endpoint.provider.id, result, cost
        )
        await send_json(send, 200, body, [(b"x-generation-id", gen_id.encode()), *headers])

    async def _stream(
        self,
        request: ChatRequest,
        routes: list[Route],
        send: Send,
        recorder: GenerationRecorder,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        interval = self._gateway.settings.keepalive_interval_s
        try:
            route, events, first = await _open_stream(
                request, routes, recorder, self._gateway.planner.health, interval
            )
        except GatewayError as error:
            recorder.failed(error)
            await send_error(send, error)
            return
        except asyncio.CancelledError:
            recorder.cancelled = True
            raise
        gen_id = recorder.generation_id
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, (b"x-generation-id", gen_id.encode()), *headers],
            }
        )
        writer = ChunkWriter(gen_id, int(time.time()), route.model.id, route.endpoint.provider.id)
        try:
            await _relay(route, events, first, writer, send, interval, recorder)
        except asyncio.CancelledError:
            recorder.cancelled = True
            raise
        finally:
            await events.aclose()


async def _first_success(
    request: ChatRequest,
    routes: list[Route],
    recorder: GenerationRecorder,
    health: HealthTracker,
    call: Callable[[Route], Awaitable[T]],
) -> tuple[Route, T]:
    """Try each route in order; move on only on an error another endpoint may not have."""
    allow_fallbacks = request.provider is None or request.provider.allow_fallbacks
    last: UpstreamError | None = None
    for route in routes:
        recorder.start_attempt()
        endpoint_id = route.endpoint.id
        try:
            result = await call(route)
        except UpstreamRateLimited as error:  # busy, not broken: no mark against its health
            health.release(endpoint_id)
            recorder.attempt_failed(route, error)
            last = error
            if not allow_fallbacks:
                break
            continue
        except UpstreamError as error:
            if error.retryable:
                health.failure(endpoint_id)
            else:
                health.release(endpoint_id)
            recorder.attempt_failed(route, error)
            last = error
            if not (error.retryable and allow_fallbacks):
                break
            continue
        except GatewayError as error:
            health.release(endpoint_id)
            recorder.attempt_failed(route, error)
            raise
        except asyncio.CancelledError:
            health.release(endpoint_id)
            raise
        health.success(endpoint_id)
        recorder.served_by(route)
        return route, result
    assert last is not None
    raise last


async def _open_stream(
    request: ChatRequest,
    routes: list[Route],
    recorder: GenerationRecorder,
    health: HealthTracker,
    wait_s: float,
) -> tuple[Route, EventPump, StreamEvent | None]:
    """Start a stream on the first route that yields an event (or has not failed by `wait_s`).

    Until the first event arrives an error is still an ordinary HTTP error and the next
    route is tried; past `wait_s` we commit to this route so keep-alives can flow.
    """

    async def start(route: Route) -> tuple[EventPump, StreamEvent | None]:
        events = EventPump(route.provider.stream(request, route.endpoint))
        try:
            first = await events.next(wait_s)
        except StreamQuiet:
            return events, None
        except BaseException:
            await events.aclose()
            raise
        if first is None:
            await events.aclose()
            raise UpstreamError("the provider ended the stream without an answer", retryable=True)
        return events, first

    route, (events, first) = await _first_success(request, routes, recorder, health, start)
    return route, events, first


async def _relay(
    route: Route,
    events: EventPump,
    first: StreamEvent | None,
    writer: ChunkWriter,
    send: Send,
    keepalive_s: float,
    recorder: GenerationRecorder,
) -> None:
    async def body(chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    try:
        event = first
        while True:
            if event is None:
                try:
                    event = await events.next(keepalive_s)
                except StreamQuiet:
                    await body(KEEPALIVE)
                    continue
                if event is None:
                    raise UpstreamError("the provider ended the stream without finishing it")
            recorder.first_token()
            if isinstance(event, Delta):
                recorder.relayed(event)
                await body(writer.delta(event))
                event = None
                continue
            assert isinstance(event, Finish)
            # An upstream that reports no usage is billed for what was relayed.
            usage = event.usage if event.usage.total_tokens else recorder.relayed_usage()
            cost = usage_cost(route.endpoint.price, usage)
            recorder.finished(usage, cost, event.finish_reason, event.native_finish_reason)
            await body(writer.finish(event.finish_reason, event.native_finish_reason))
            await body(writer.usage(usage, cost))
            break
    except GatewayError as error:
        recorder.failed(error)
        await body(writer.error(error))
    except (ValueError, RuntimeError, OSError) as exc:
        failure = ServerError(f"the stream failed: {exc}")
        recorder.failed(failure)
        await body(writer.error(failure))
    await send({"type": "http.response.body", "body": DONE, "more_body": False})


async def _cancel_on_disconnect(
    receive: Receive, work: Awaitable[None], watch_after_s: float = WATCH_AFTER_S
) -> None:
    """Run `work` in this task; if the client disconnects first, cancel it (and so its
    generation). The watch on the connection starts only once the request has run for
    `watch_after_s`: a quick answer never pays for a second task, and a long generation
    is still stopped within that much of its client leaving."""
    handler = asyncio.current_task()
    assert handler is not None
    loop = asyncio.get_running_loop()
    watcher: asyncio.Task[None] | None = None
    client_gone = False

    async def watch() -> None:
        nonlocal client_gone
        while (await receive())["type"] != "http.disconnect":
            pass
        client_gone = True
        handler.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(watch_after_s, start_watching)
    try:
        await work
    except asyncio.CancelledError:
        # Our own cancellation (the client left) ends here; anyone else's goes on.
        if client_gone and handler.uncancel() == 0:
            return
        raise
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
