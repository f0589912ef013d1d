"""The use case of every inference request, whichever API it came through."""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.access.caller import Caller
from modelyard.errors import NoProviderAvailable, UpstreamError
from modelyard.ledger.recorder import GenerationRecorder
from modelyard.ledger.writer import LedgerWriter
from modelyard.limits.base import Limits, RateLimiter, Reservation
from modelyard.limits.budget import BudgetGuard
from modelyard.limits.budget_estimate import prompt_ceiling
from modelyard.providers.base import (
    NativeRequest,
    native_speaker,
    output_tokens,
    token_counter,
)
from modelyard.providers.credentials import Credentials, OperatorKeys, using
from modelyard.routing.filters import typical_prompt_tokens
from modelyard.routing.planner import Planner, Route
from modelyard.routing.sticky import Conversation
from modelyard.schema.chat import ChatRequest
from modelyard.schema.response import generation_id
from modelyard.service.call import GenerationCall
from modelyard.service.fallback import FallbackRoutes
from modelyard.service.info import CallInfo
from modelyard.service.observers import Observer, Outcome


class GenerationService:
    def __init__(
        self,
        *,
        planner: Planner,
        budget: BudgetGuard,
        limiter: RateLimiter,
        ledger: LedgerWriter,
        observers: Sequence[Observer],
        log_content: bool,
        keepalive_s: float,
        operator_keys: OperatorKeys,
    ) -> None:
        self._planner = planner
        self._budget = budget
        self._limiter = limiter
        self._ledger = ledger
        self._observers = tuple(observers)
        self._log_content = log_content
        self._keepalive_s = keepalive_s
        self._operator_keys = operator_keys

    async def begin(self, caller: Caller, request: ChatRequest, info: CallInfo) -> GenerationCall:
        """Plan the routes, hold the budget and the rate-limit window, and return the call
        that runs them. A refusal raises its GatewayError; a request no provider can serve
        is recorded in the ledger as well."""
        if info.clamp_output:
            request = self._planner.clamp_output(request)
        # Bounded ledger queue: wait here (rarely) rather than accept work we cannot record.
        await self._ledger.room()
        credentials = self.credentials(caller)
        recorder = GenerationRecorder(
            generation_id(),
            caller,
            request,
            credentials=credentials,
            api=info.api,
            http_referer=info.http_referer,
            x_title=info.x_title,
            log_content=self._log_content,
        )
        session = Conversation(caller.app_id, request, info.session_header)
        try:
            routes = self._planner.plan(
                request,
                caller.allowed_models,
                zdr_key=caller.zdr,
                credentials=credentials,
                session=session,
                model_type=info.model_type,
            )
        except NoProviderAvailable as error:
            recorder.failed(error)
            await self.report(Outcome(recorder.row(), None, session))
            raise
        budget = await self._budget.reserve(caller.key, recorder.generation_id, request, routes)
        try:
            reservation = await self._reserve(caller, request, routes[0])
        except BaseException:
            if budget is not None:
                await budget.release()
            raise
        fallback = FallbackRoutes(request, info.native, routes, recorder, self._planner.health)
        return GenerationCall(
            self, credentials, request, fallback, recorder, session, budget, reservation
        )

    def credentials(self, caller: Caller) -> Credentials:
        """The keys this caller's upstream calls use: its app's own, else the operator's."""
        return Credentials(self._operator_keys, caller.provider_keys)

    async def count_tokens(
        self, caller: Caller, request: ChatRequest, native: NativeRequest | None
    ) -> tuple[int, str]:
        """The prompt's tokens on the route the request would take first, and who counted:
        "upstream" (its own count), "tokenizer" (the model's, here) or "estimate"."""
        credentials = self.credentials(caller)
        route = self._planner.plan(
            request, caller.allowed_models, zdr_key=caller.zdr, credentials=credentials
        )[0]
        speaker = native_speaker(route.provider, native)
        counter = token_counter(route.provider)
        try:
            with using(credentials):
                if speaker is not None and native is not None:
                    return await speaker.count_native(native, route.endpoint), "upstream"
                if counter is not None:
                    return await counter.count_tokens(request, route.endpoint), "tokenizer"
        except UpstreamError:
            pass  # a count is advice: an estimate beats an error
        return typical_prompt_tokens(request), "estimate"

    @property
    def keepalive_s(self) -> float:
        return self._keepalive_s

    async def report(self, outcome: Outcome) -> None:
        for observer in self._observers:
            await observer.observe(outcome)

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
        estimate = prompt_ceiling(request) + output_tokens(request, route.endpoint)
        scope = f"{caller.app.id}:{route.model.id}"
        return await self._limiter.reserve(scope, limits, estimate)
