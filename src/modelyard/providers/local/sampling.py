"""Token sampling for the local engine, with a fast path for grammar-constrained output.

llama.cpp's grammar sampler checks every vocabulary entry (262k for Gemma 3) against the
grammar on every step, which halved generation speed. Like llama.cpp's own common
sampler, we first sample from the unconstrained chain, ask the grammar about that one
token, and only when it is rejected sample again with the grammar applied to the whole
vocabulary. A model that follows the format is then almost as fast as unconstrained.
"""

from __future__ import annotations

import ctypes
import math
import random
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp._internals import LlamaSampler

# Sampling defaults when the client sends none: Gemma's recommended settings.
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_K = 64
DEFAULT_TOP_P = 0.95
PENALTY_WINDOW = 64
# tool_choice "auto": call a tool when the model puts at least this much probability on a
# call-opening first token ("{" or "<", as in "<tool_call>"). Measured on SmolLM2 135M with
# bench/tools_auto.py's prompts: the probability is 0.02-0.19 (median ~0.04) on prompts that
# need a tool and 0.00-0.05 (median ~0.004) on prompts that do not, while the argmax token is
# almost never the call; 0.02 separates the two sets best.
CALL_THRESHOLD = 0.02
# Right after a tool result the same model puts 0.3-0.4 on repeating the call it just made
# (it cannot chain calls usefully): a follow-up call must be the likelier branch.
FOLLOW_UP_CALL_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    top_k: int = DEFAULT_TOP_K
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    logit_bias: dict[int, float] | None = None
    # tool_choice "auto": the grammar of a call, chosen or not by the first token (CALL_THRESHOLD).
    call_grammar: str | None = None
    call_threshold: float = CALL_THRESHOLD


class TokenSampler:
    """Samples one token per call from the context's last logits, then accepts it."""

    def __init__(self, llm: Llama, params: SamplingParams, grammar: str | None) -> None:
        self._llm = llm
        self._n_vocab = llm.n_vocab()
        self._chain = _chain(llm, params)
        self._grammar: Any = None
        self._call_grammar = params.call_grammar
        self._call_threshold = params.call_threshold
        if grammar is not None or self._call_grammar is not None:
            self._candidates = (llama_cpp.llama_token_data * self._n_vocab)()
            self._view = np.ctypeslib.as_array(self._candidates)
            self._ids = np.arange(self._n_vocab, dtype=np.int32)
            self._one = (llama_cpp.llama_token_data * 1)()
        if grammar is not None and self._call_grammar is None:
            self._grammar = self._init_grammar(grammar)

    def _init_grammar(self, grammar: str) -> Any:
        sampler = llama_cpp.llama_sampler_init_grammar(
            self._llm._model.vocab, grammar.encode("utf-8"), b"root"
        )
        if not sampler:
            self._chain.close()
            raise ValueError("llama.cpp rejected the output grammar")
        return sampler

    def sample(self) -> int:
        ctx = self._llm._ctx
        if self._call_grammar is not None:
            return self._first_of_auto()
        if self._grammar is None:
            return int(self._chain.sample(ctx, -1))  # samples and accepts in C
        logits = self._logits()
        token = self._apply(logits, with_grammar=False)
        if not self._grammar_allows(token):
            token = self._apply(logits, with_grammar=True)
        llama_cpp.llama_sampler_accept(self._grammar, token)
        self._chain.accept(token)
        return token

    def _logits(self) -> np.ndarray[Any, Any]:
        pointer = llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    def _first_of_auto(self) -> int:
        """The first token under tool_choice "auto": a call or text, by the call's probability.

        Decided on the model's own distribution (no temperature, no draw), so the same prompt
        always makes the same choice; sampling within the chosen branch is as usual.
        """
        call_grammar, self._call_grammar = self._call_grammar, None
        assert call_grammar is not None
        starts, blank = call_masks(self._llm)
        logits = self._logits()
        shifted = np.exp(logits - logits.max())
        if shifted[starts].sum() / shifted.sum() >= self._call_threshold:
            self._grammar = self._init_grammar(call_grammar)
            token = self._apply(logits, with_grammar=True)
            llama_cpp.llama_sampler_accept(self._grammar, token)
        else:
            # Text: its first token may not open a call or be only blanks, so the first
            # non-blank character tells a call ("{") from text downstream.
            banned = logits.copy()
            banned[starts | blank] = -np.inf
            token = self._apply(banned, with_grammar=False)
        self._chain.accept(token)
        return token

    def _grammar_allows(self, token: int) -> bool:
        self._one[0].id = llama_cpp.llama_token(token)
        self._one[0].logit = 1.0
        single = llama_cpp.llama_token_data_array(self._one, 1, -1, False)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(single))
        return math.isfinite(self._one[0].logit)

    def _apply(self, logits: np.ndarray[Any, Any], *, with_grammar: bool) -> int:
        # Samplers sort and shrink the candidate array in place: refill it every time.
        self._view["id"] = self._ids
        self._view["logit"] = logits
        self._view["p"] = 0.0
        candidates = llama_cpp.llama_token_data_array(self._candidates, self._n_vocab, -1, False)
        if with_grammar:
            llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(candidates))
        llama_cpp.llama_sampler_apply(self._chain.sampler, ctypes.byref(candidates))
        return int(candidates.data[candidates.selected].id)

    def close(self) -> None:
        self._chain.close()
        if self._grammar is not None:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None


def _chain(llm: Llama, p: SamplingParams) -> LlamaSampler:
    """logit bias → penalties → (top-k → top-p → min-p → temperature → seeded draw | greedy)."""
    sampler = LlamaSampler()
    n_vocab = llm.n_vocab()
    if p.logit_bias:
        sampler.add_logit_bias(n_vocab, p.logit_bias)
    if p.repeat_penalty != 1.0 or p.frequency_penalty or p.presence_penalty:
        sampler.add_penalties(
            n_vocab=n_vocab,
            penalty_last_n=PENALTY_WINDOW,
            penalty_repeat=p.repeat_penalty,
            penalty_freq=p.frequency_penalty,
            penalty_present=p.presence_penalty,
        )
    if p.temperature == 0:
        sampler.add_greedy()
        return sampler
    if p.top_k > 0:
        sampler.add_top_k(p.top_k)
    if p.top_p < 1.0:
        sampler.add_top_p(p.top_p, 1)
    if p.min_p > 0:
        sampler.add_min_p(p.min_p, 1)
    sampler.add_temp(p.temperature)
    seed = p.seed if p.seed is not None else random.getrandbits(32)
    sampler.add_dist(seed & 0xFFFFFFFF)
    return sampler


_MASKS: dict[int, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}


def call_masks(llm: Llama) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(tokens that open a call: "{" or "<" after blanks; tokens that are only blanks)."""
    key = id(llm._model)
    if key not in _MASKS:
        vocab = llm._model.vocab
        buf = ctypes.create_string_buffer(128)
        pieces = []
        for token in range(llm.n_vocab()):
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)
            pieces.append(buf.raw[: max(n, 0)].decode("utf-8", "replace"))
        starts = np.array([p.lstrip().startswith(("{", "<")) for p in pieces])
        blank = np.array([bool(p) and not p.strip() for p in pieces])
        _MASKS[key] = starts, blank
    return _MASKS[key]
