"""One GGUF model on one worker thread: a FIFO of generation jobs, off the event loop.

llama.cpp contexts are not thread-safe and two generations on one context would thrash
its KV cache, so jobs run one at a time in arrival order (first come, first served). The
event loop only enqueues a job and awaits its events; every token crosses back with
`call_soon_threadsafe`. A job whose consumer went away is cancelled between two tokens.

The context keeps the KV of the previous prompt; a new job whose prompt shares a prefix
with it evaluates only the rest (`cached_tokens` reports how much was reused).

Reuse must not change the answer: llama.cpp's numbers for a token depend on how the batch
it was evaluated in is cut (a batch starting at position 5, or one of 4 tokens, gives other
logits), so a seeded request would sample differently after reusing 4 tokens than after
reusing 15. Batch boundaries therefore always fall on multiples of `CHUNK` positions: the
prompt's whole chunks from the reuse point go in one batch (llama-cpp-python cuts it every
n_batch, also a multiple of `CHUNK`), its partial last chunk in another, and only whole
chunks are reused; a token's KV is then the same bytes whatever ran before. Tokens generated
one at a time and a prompt's partial last chunk are never reused. A small `CHUNK` keeps what
a new conversation re-evaluates short (the reuse is rounded down to it).
"""

from __future__ import annotations

import asyncio
import codecs
import ctypes
import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama

from modelyard.errors import UpstreamError
from modelyard.providers.local.prefix_cache import (
    PrefixStateCache,
    common_prefix,
    reusable_prefix,
)
from modelyard.providers.local.sampling import SamplingParams, TokenSampler
from modelyard.providers.local.stops import StopMatcher

log = logging.getLogger(__name__)

# Restoring a saved state costs ~40 ms; only worth it when it saves evaluating this many.
RESTORE_MIN_GAIN = 64
# Batch boundaries fall on multiples of it (smaller cuts change llama.cpp's numbers); reuse
# is rounded down to it.
CHUNK = 8


@dataclass(slots=True)
class TextPiece:
    text: str
    # (chosen token's text, its logprob, top alternatives) when logprobs were asked for.
    logprob: tuple[str, float, list[tuple[str, float]]] | None = None


@dataclass(slots=True)
class JobDone:
    reason: str  # stop | length | cancelled
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    stop_sequence: str | None = None  # the stop sequence that ended it, if one did


@dataclass(slots=True)
class JobFailed:
    error: BaseException


EngineEvent = TextPiece | JobDone | JobFailed


@dataclass(slots=True)
class GenerationJob:
    prompt_tokens: list[int]
    max_tokens: int
    params: SamplingParams
    stop: list[str] = field(default_factory=list)
    grammar: str | None = None
    top_logprobs: int | None = None  # None: no logprobs
    events: asyncio.Queue[EngineEvent] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)

    def emit(self, event: EngineEvent) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class LlamaEngine:
    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int,
        threads: int | None,
        max_queue: int,
        kv_cache_bytes: int = 512 * 2**20,
    ) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self._threads = threads
        self._jobs: queue.Queue[GenerationJob | None] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._llm: Llama | None = None
        self._piece_buffer = ctypes.create_string_buffer(128)
        self._states = PrefixStateCache(kv_cache_bytes, chunk=CHUNK)
        # How many leading tokens of the live KV were evaluated as whole aligned chunks.
        self._reusable = 0

    # -- lifecycle (called from the event loop) -------------------------------------------
    def load(self) -> None:
        """Load the weights (blocking: call it in a worker thread) and start the job thread."""
        self._llm = Llama(
            model_path=str(self.model_path),
            n_ctx=self.n_ctx,
            n_threads=self._threads,
            n_batch=512,
            verbose=False,
        )
        self._thread = threading.Thread(target=self._work, name="llama-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        self._llm = None

    @property
    def llm(self) -> Llama:
        if self._llm is None:
            raise RuntimeError("engine not loaded")
        return self._llm

    @property
    def queue_depth(self) -> int:
        return self._jobs.qsize()

    def chat_template(self) -> str | None:
        template = self.llm.metadata.get("tokenizer.chat_template")
        return template if isinstance(template, str) and template.strip() else None

    def special_token_text(self, token_id: int) -> str:
        return self.llm.detokenize([token_id], special=True).decode("utf-8", "replace")

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def submit(self, job: GenerationJob) -> None:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise UpstreamError(
                f"the local model is busy: {self._jobs.maxsize} requests are already waiting",
                upstream_status=503,
                retryable=True,
            ) from None

    # -- the worker thread ---------------------------------------------------------------
    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.cancelled.is_set():
                continue
            try:
                job.emit(self._generate(job))
            except Exception as exc:  # a failed job must not kill the worker
                log.exception("local generation failed")
                job.emit(JobFailed(exc))

    def _generate(self, job: GenerationJob) -> JobDone:
        llm = self.llm
        cached = self._evaluate_prompt(job.prompt_tokens)
        sampler = TokenSampler(llm, job.params, job.grammar)
        vocab = llm._model.vocab
        ctx = llm._ctx.ctx
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopMatcher(job.stop)
        generated = 0
        reason = "length"
        try:
            while generated < job.max_tokens:
                if job.cancelled.is_set():
                    reason = "cancelled"
                    break
                token = sampler.sample()
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    reason = "stop"
                    break
                generated += 1
                logprob = (
                    self._logprob(ctx, token, job.top_logprobs)
                    if job.top_logprobs is not None
                    else None
                )
                text = stops.feed(decoder.decode(self._piece(vocab, token)))
                if text or logprob is not None:
                    job.emit(TextPiece(text, logprob))
                if stops.stopped:
                    reason = "stop"
                    break
                if generated < job.max_tokens:
                    llm.eval([token])
        finally:
            sampler.close()
        if not stops.stopped:
            tail = stops.feed(decoder.decode(b"", final=True)) + stops.flush()
            if tail:
                job.emit(TextPiece(tail))
        return JobDone(reason, len(job.prompt_tokens), generated, cached, stops.matched)

    def _evaluate_prompt(self, tokens: list[int]) -> int:
        """Evaluate the prompt, reusing the KV of the longest whole-chunk prefix it shares
        with the live context or with a saved state; returns how many tokens were reused."""
        llm = self.llm
        prompt = np.asarray(tokens, dtype=llm.input_ids.dtype)
        live = common_prefix(llm.input_ids[: self._reusable], prompt) if self._reusable else 0
        reuse = reusable_prefix(live, len(tokens), CHUNK)
        saved = self._states.longest(prompt)
        if saved is not None:
            gain = reusable_prefix(saved[0], len(tokens), CHUNK)
            if gain > reuse + RESTORE_MIN_GAIN:
                self._states.restore(llm, saved[1])
                reuse = gain
        if reuse > 0 and llm._ctx.kv_cache_seq_rm(-1, reuse, -1):
            llm.n_tokens = reuse
        else:
            reuse = 0
            llm.reset()
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        self._reusable = 0  # until the chunks below are in
        whole = len(tokens) // CHUNK * CHUNK
        if reuse < whole:
            llm.eval(tokens[reuse:whole])
        if whole < len(tokens):
            llm.eval(tokens[whole:])
        self._reusable = whole
        if len(tokens) - reuse >= self._states.min_tokens:
            self._states.save(llm, prompt)  # a long evaluation just paid for: keep it
        return reuse

    def _piece(self, vocab: Any, token: int) -> bytes:
        buf = self._piece_buffer
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n] if n > 0 else b""

    def _logprob(
        self, ctx: Any, token: int, top: int
    ) -> tuple[str, float, list[tuple[str, float]]]:
        n_vocab = self.llm.n_vocab()
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
        shifted = logits - logits.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        vocab = self.llm._model.vocab
        alternatives: list[tuple[str, float]] = []
        if top > 0:
            best = np.argpartition(-logprobs, top)[:top]
            best = best[np.argsort(-logprobs[best])]
            alternatives = [
                (self._piece(vocab, int(t)).decode("utf-8", "replace"), float(logprobs[t]))
                for t in best
            ]
        text = self._piece(vocab, token).decode("utf-8", "replace")
        return text, float(logprobs[token]), alternatives
