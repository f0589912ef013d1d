"""Provider kind `local`: GGUF models run in-process by llama.cpp."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from modelyard.catalog import Catalog, Endpoint
from modelyard.errors import InvalidRequest, UpstreamError
from modelyard.providers.base import (
    Completion,
    Delta,
    Embeddings,
    Finish,
    StreamEvent,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from modelyard.providers.local.embedding_engine import BertEmbedder
from modelyard.providers.local.engine import (
    GenerationJob,
    JobDone,
    JobFailed,
    LlamaEngine,
    TextPiece,
)
from modelyard.providers.local.model_file import (
    ModelFileError,
    resolve_embedder_dir,
    resolve_model_path,
)
from modelyard.providers.local.options import endpoint_options, provider_options
from modelyard.providers.local.prompt import (
    TURN_FORMATS,
    TemplateFormat,
    TurnFormat,
    request_turns,
)
from modelyard.providers.local.sampling import (
    CALL_THRESHOLD,
    FOLLOW_UP_CALL_THRESHOLD,
    SamplingParams,
)
from modelyard.providers.local.structured import (
    OutputConstraint,
    json_object_constraint,
    json_schema_constraint,
    parse_tool_call,
    tool_call_constraint,
)
from modelyard.schema.chat import (
    ChatRequest,
    JsonObjectFormat,
    JsonSchemaFormat,
    NamedToolChoice,
    ToolMessage,
)

if TYPE_CHECKING:
    from modelyard.schema.embeddings import EmbeddingsRequest


@dataclass
class _LoadedModel:
    engine: LlamaEngine
    turn_format: TurnFormat


@dataclass(frozen=True, slots=True)
class _Plan:
    job: GenerationJob
    constraint: OutputConstraint | None
    tool_mode: bool  # the output is (or may be) a tool call


class LocalProvider:
    kind: ClassVar[str] = "local"

    def __init__(self, catalog: Catalog, data_dir: Path, *, show_progress: bool = False) -> None:
        self._catalog = catalog
        self._data_dir = data_dir
        self._show_progress = show_progress
        self._models: dict[str, _LoadedModel] = {}
        self._errors: dict[str, str] = {}
        self._embedders: dict[str, BertEmbedder] = {}

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        for model in self._catalog.models.values():
            for endpoint in model.endpoints:
                if endpoint.provider.kind != self.kind:
                    continue
                if model.spec.type == "embedding":
                    await self._load_embedder(endpoint)
                else:
                    await self._load(endpoint)

    async def _load_embedder(self, endpoint: Endpoint) -> None:
        try:
            directory = await asyncio.to_thread(
                resolve_embedder_dir, endpoint.upstream_model, self._data_dir
            )
        except ModelFileError as exc:
            self._errors[endpoint.id] = str(exc)
            return
        embedder = BertEmbedder(directory, max_tokens=endpoint.context_length)
        await asyncio.to_thread(embedder.load)
        self._embedders[endpoint.id] = embedder

    async def _load(self, endpoint: Endpoint) -> None:
        try:
            path = await asyncio.to_thread(
                resolve_model_path,
                endpoint.upstream_model,
                self._data_dir,
                show_progress=self._show_progress,
            )
        except ModelFileError as exc:
            self._errors[endpoint.id] = str(exc)
            return
        options = provider_options(endpoint.provider)
        engine = LlamaEngine(
            path,
            n_ctx=endpoint.context_length,
            threads=options.threads,
            max_queue=options.max_queue,
            kv_cache_bytes=options.kv_cache_mb * 2**20,
        )
        await asyncio.to_thread(engine.load)
        self._models[endpoint.id] = _LoadedModel(engine, self._turn_format(engine, endpoint))

    @staticmethod
    def _turn_format(engine: LlamaEngine, endpoint: Endpoint) -> TurnFormat:
        chat_format = endpoint_options(endpoint.spec).chat_format
        if chat_format:
            return TURN_FORMATS[chat_format]
        template = engine.chat_template()
        if template is None:
            return TURN_FORMATS["gemma"]
        llm = engine.llm
        return TemplateFormat(
            template,
            engine.special_token_text(llm.token_bos()),
            engine.special_token_text(llm.token_eos()),
        )

    async def close(self) -> None:
        for loaded in self._models.values():
            await asyncio.to_thread(loaded.engine.stop)
        self._models.clear()
        for embedder in self._embedders.values():
            await asyncio.to_thread(embedder.stop)
        self._embedders.clear()

    def unavailable_reason(self, endpoint: Endpoint) -> str | None:
        if endpoint.id in self._models or endpoint.id in self._embedders:
            return None
        return self._errors.get(endpoint.id, "the local model is not loaded")

    def queue_depth(self, endpoint: Endpoint) -> int:
        loaded = self._models.get(endpoint.id)
        return loaded.engine.queue_depth if loaded else 0

    # -- requests ------------------------------------------------------------------------
    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> Completion:
        plan = self._plan(request, endpoint)
        text: list[str] = []
        logprobs: list[TokenLogprob] | None = [] if plan.job.top_logprobs is not None else None
        done = await self._run(plan, endpoint, text, logprobs)
        content = "".join(text)
        usage = _usage(done)
        native = _native_reason(done)
        content += _closing(plan, done, content)
        if plan.tool_mode:
            call = parse_tool_call(content)
            if call is not None:
                name, arguments = call
                tool_call = ToolCall(_call_id(), name, arguments)
                return Completion(None, "tool_calls", native, usage, [tool_call])
        finish = "length" if done.reason == "length" else "stop"
        return Completion(
            content, finish, native, usage, logprobs=logprobs, stop_sequence=done.stop_sequence
        )

    async def stream(
        self, request: ChatRequest, endpoint: Endpoint
    ) -> AsyncGenerator[StreamEvent, None]:
        plan = self._plan(request, endpoint)
        job = plan.job
        self._submit(job, endpoint)
        pieces: list[str] = []
        # A tool call is sent whole once complete; with tool_choice "auto" the sampler's first
        # token chose, and the first non-blank character tells a call ("{" or "<") from text.
        mode = _UNDECIDED if plan.tool_mode else _TEXT
        # The first piece tells the prompt's size (the Messages API's message_start shows
        # it; a stream cut short bills it).
        prompt: Usage | None = Usage(prompt_tokens=len(job.prompt_tokens))
        try:
            while True:
                event = await job.events.get()
                if isinstance(event, TextPiece):
                    pieces.append(event.text)
                    if mode == _UNDECIDED:
                        mode = _decide_mode("".join(pieces), plan.constraint)
                        if mode == _TEXT:
                            yield Delta(content="".join(pieces), prompt_usage=prompt)
                            prompt = None
                    elif mode == _TEXT:
                        yield Delta(
                            content=event.text, logprobs=_logprob_list(event), prompt_usage=prompt
                        )
                        prompt = None
                    continue
                if isinstance(event, JobFailed):
                    raise _failure(event)
                text = "".join(pieces)
                suffix = _closing(plan, event, text)
                call = parse_tool_call(text + suffix) if mode != _TEXT else None
                if call is not None:
                    name, arguments = call
                    start = ToolCallDelta(0, _call_id(), name, "")
                    yield Delta(tool_calls=[start], prompt_usage=prompt)
                    yield Delta(tool_calls=[ToolCallDelta(0, arguments=arguments)])
                    yield Finish("tool_calls", _native_reason(event), _usage(event))
                    return
                rest = (text if mode != _TEXT else "") + suffix
                if rest:
                    yield Delta(content=rest, prompt_usage=prompt)
                finish = "length" if event.reason == "length" else "stop"
                yield Finish(
                    finish, _native_reason(event), _usage(event), stop_sequence=event.stop_sequence
                )
                return
        finally:
            job.cancelled.set()

    async def _run(
        self,
        plan: _Plan,
        endpoint: Endpoint,
        text: list[str],
        logprobs: list[TokenLogprob] | None,
    ) -> JobDone:
        job = plan.job
        self._submit(job, endpoint)
        try:
            while True:
                event = await job.events.get()
                if isinstance(event, TextPiece):
                    text.append(event.text)
                    if logprobs is not None:
                        logprobs.extend(_logprob_list(event) or ())
                elif isinstance(event, JobFailed):
                    raise _failure(event)
                else:
                    return event
        finally:
            job.cancelled.set()

    def _submit(self, job: GenerationJob, endpoint: Endpoint) -> None:
        loaded = self._models.get(endpoint.id)
        if loaded is None:
            raise UpstreamError(self.unavailable_reason(endpoint) or "not loaded", retryable=True)
        loaded.engine.submit(job)

    async def embed(self, request: EmbeddingsRequest, endpoint: Endpoint) -> Embeddings:
        """Unit vectors (the model card's mean pooling, L2 normalised), one worker thread."""
        embedder = self._embedders.get(endpoint.id)
        if embedder is None:
            raise UpstreamError(self.unavailable_reason(endpoint) or "not loaded", retryable=True)
        if request.dimensions is not None and request.dimensions != embedder.dimensions:
            raise InvalidRequest(
                f"This model's vectors have {embedder.dimensions} dimensions and cannot be "
                f"shortened (it was not trained for truncation); 'dimensions' must be "
                f"{embedder.dimensions} or left out.",
                param="dimensions",
            )
        loop = asyncio.get_running_loop()
        texts = request.texts
        if texts is not None:
            pieces = await loop.run_in_executor(
                embedder.executor, lambda: [embedder.tokenizer.encode(t) for t in texts]
            )
        else:
            pieces = request.token_inputs
        inputs = [embedder.with_specials(ids) for ids in pieces]
        for index, ids in enumerate(inputs):
            if len(ids) > embedder.max_tokens:
                raise InvalidRequest(
                    f"'input[{index}]' is {len(ids)} tokens, more than this model's limit of "
                    f"{embedder.max_tokens} tokens an input.",
                    param=f"input[{index}]",
                )
            if texts is None and max(ids) >= embedder.vocab_size:
                raise InvalidRequest(
                    f"'input[{index}]' holds a token id outside the vocabulary "
                    f"(0..{embedder.vocab_size - 1}).",
                    param=f"input[{index}]",
                )
        vectors = await loop.run_in_executor(embedder.executor, embedder.embed, inputs)
        return Embeddings(vectors, Usage(prompt_tokens=sum(len(ids) for ids in inputs)))

    async def count_tokens(self, request: ChatRequest, endpoint: Endpoint) -> int:
        """The prompt's tokens as this model sees them: its chat template, its tokenizer."""
        loaded = self._models.get(endpoint.id)
        if loaded is None:
            raise UpstreamError(self.unavailable_reason(endpoint) or "not loaded", retryable=True)
        prompt = loaded.turn_format(request_turns(request))
        return len(loaded.engine.tokenize(prompt.text))

    def _plan(self, request: ChatRequest, endpoint: Endpoint) -> _Plan:
        loaded = self._models.get(endpoint.id)
        if loaded is None:
            raise UpstreamError(self.unavailable_reason(endpoint) or "not loaded", retryable=True)
        engine = loaded.engine
        prompt = loaded.turn_format(request_turns(request))
        tokens = engine.tokenize(prompt.text)
        room = engine.n_ctx - len(tokens)
        if room < 1:
            raise InvalidRequest(
                f"This model's maximum context length is {engine.n_ctx} tokens, "
                f"but the prompt is {len(tokens)} tokens. Shorten the messages.",
                param="messages",
            )
        supported = endpoint.supported_parameters
        limit = request.output_limit if "max_tokens" in supported else None
        default = endpoint.model.default_max_tokens or endpoint.max_output
        max_tokens = min(limit or default, endpoint.max_output, room)
        constraint = _constraint(request) if _wants_structure(request, supported) else None
        tool_mode = bool(request.tools) and request.tool_choice != "none" and "tools" in supported
        params = _sampling(request, supported)
        if constraint is not None and constraint.call_grammar is not None:
            follow_up = isinstance(request.messages[-1], ToolMessage)
            threshold = FOLLOW_UP_CALL_THRESHOLD if follow_up else CALL_THRESHOLD
            params = replace(params, call_grammar=constraint.call_grammar, call_threshold=threshold)
        job = GenerationJob(
            prompt_tokens=tokens,
            max_tokens=max_tokens,
            params=params,
            stop=request.stop_sequences if "stop" in supported else [],
            grammar=constraint.grammar if constraint else None,
            top_logprobs=(request.top_logprobs or 0)
            if request.logprobs and "logprobs" in supported
            else None,
        )
        return _Plan(job, constraint, tool_mode)


def _wants_structure(request: ChatRequest, supported: frozenset[str]) -> bool:
    if request.tools and request.tool_choice != "none" and "tools" in supported:
        return True
    return "response_format" in supported and isinstance(
        request.response_format, JsonObjectFormat | JsonSchemaFormat
    )


def _constraint(request: ChatRequest) -> OutputConstraint:
    try:
        if request.tools and request.tool_choice != "none":
            choice = request.tool_choice
            force = choice.function.name if isinstance(choice, NamedToolChoice) else None
            tools = [(t.function.name, t.function.parameters) for t in request.tools]
            return tool_call_constraint(tools, force=force, allow_text=choice in (None, "auto"))
        fmt = request.response_format
        if isinstance(fmt, JsonSchemaFormat):
            return json_schema_constraint(fmt.json_schema.schema or {"type": "object"})
        return json_object_constraint()
    except ValueError as exc:
        param = "tools" if request.tools else "response_format"
        raise InvalidRequest(f"Unsupported JSON Schema in '{param}': {exc}", param=param) from exc


def _sampling(request: ChatRequest, supported: frozenset[str]) -> SamplingParams:
    def sent(name: str) -> bool:
        return name in supported and getattr(request, name) is not None

    defaults = SamplingParams()
    bias = None
    if sent("logit_bias") and request.logit_bias:
        bias = {int(token): value for token, value in request.logit_bias.items()}
    return SamplingParams(
        temperature=request.temperature if sent("temperature") else defaults.temperature,  # type: ignore[arg-type]
        top_p=request.top_p if sent("top_p") else defaults.top_p,  # type: ignore[arg-type]
        top_k=request.top_k if sent("top_k") else defaults.top_k,  # type: ignore[arg-type]
        min_p=request.min_p if sent("min_p") else defaults.min_p,  # type: ignore[arg-type]
        repeat_penalty=request.repetition_penalty if sent("repetition_penalty") else 1.0,  # type: ignore[arg-type]
        frequency_penalty=request.frequency_penalty if sent("frequency_penalty") else 0.0,  # type: ignore[arg-type]
        presence_penalty=request.presence_penalty if sent("presence_penalty") else 0.0,  # type: ignore[arg-type]
        seed=request.seed if sent("seed") else None,
        logit_bias=bias,
    )


def _usage(done: JobDone) -> Usage:
    return Usage(
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        cached_tokens=done.cached_tokens,
    )


def _native_reason(done: JobDone) -> str:
    return {"stop": "stop", "length": "length"}.get(done.reason, done.reason)


def _logprob_list(piece: TextPiece) -> list[TokenLogprob] | None:
    if piece.logprob is None:
        return None
    token, value, top = piece.logprob
    return [TokenLogprob(token, value, top)]


_TEXT, _TOOL, _UNDECIDED = "text", "tool", "undecided"


def _decide_mode(text: str, constraint: OutputConstraint | None) -> str:
    stripped = text.lstrip()
    if not stripped:
        return _UNDECIDED
    if stripped.startswith(("{", "<")) or constraint is None or not constraint.allow_text:
        return _TOOL
    return _TEXT


def _closing(plan: _Plan, done: JobDone, text: str) -> str:
    """What completes structured output that the token limit cut short."""
    if plan.constraint is None or done.reason != "length":
        return ""
    return plan.constraint.close(text)


def _failure(event: JobFailed) -> UpstreamError:
    return UpstreamError(
        f"local generation failed: {event.error}", upstream_status=500, retryable=True
    )


def _call_id() -> str:
    return "call_" + secrets.token_hex(12)
