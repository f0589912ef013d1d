"""Saved KV states of long prompts, so interleaved conversations keep their prefix warm.

llama.cpp keeps only the last prompt's KV; two conversations taking turns would evaluate
their long system prompts from scratch every time. After evaluating a long prompt we save
llama.cpp's state (about 18 KB a token for Gemma 3 270M) keyed by the prompt's tokens; a
later prompt that shares a longer prefix with a saved state than with the live KV restores
it (~40 ms for 1,500 tokens, against seconds to evaluate). Least recently used states go
first once `capacity_bytes` is reached.

States are only reused in whole chunks of the engine's aligned prompt batches, so a
state keeps the tokens of its whole chunks; the KV past them is dropped after restoring.

Only llama.cpp's own state bytes and the token ids are kept: llama-cpp-python's
`save_state` also copies its (n_batch × vocabulary) logits buffer, ~512 MB for Gemma.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from dataclasses import dataclass

import llama_cpp
import numpy as np
from llama_cpp import Llama


@dataclass(frozen=True, slots=True)
class SavedState:
    tokens: np.ndarray  # the prompt tokens this state holds the KV of
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    width = min(len(a), len(b))
    if width == 0:
        return 0
    same = a[:width] == b[:width]
    return width if bool(same.all()) else int(np.argmin(same))


def reusable_prefix(shared: int, prompt_length: int, chunk: int) -> int:
    """How much of a `shared` prefix may be reused: whole chunks only, and never the whole
    prompt, since its last token must be evaluated for fresh logits."""
    return min(shared, prompt_length - 1) // chunk * chunk


class PrefixStateCache:
    def __init__(self, capacity_bytes: int, *, chunk: int = 1, min_tokens: int = 256) -> None:
        self.capacity_bytes = capacity_bytes
        self.chunk = chunk
        self.min_tokens = min_tokens
        self._states: OrderedDict[bytes, SavedState] = OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._states)

    def longest(self, tokens: np.ndarray) -> tuple[int, SavedState] | None:
        """The saved state sharing the longest prefix with `tokens`, and that length."""
        best: tuple[int, bytes] | None = None
        for key, state in self._states.items():
            shared = common_prefix(state.tokens, tokens)
            if shared and (best is None or shared > best[0]):
                best = (shared, key)
        if best is None:
            return None
        self._states.move_to_end(best[1])
        return best[0], self._states[best[1]]

    def save(self, llm: Llama, tokens: np.ndarray) -> None:
        """Keep the context's current state, which holds exactly `tokens` (evaluated in
        aligned chunks: only its whole chunks are kept as reusable)."""
        tokens = tokens[: len(tokens) // self.chunk * self.chunk]
        if len(tokens) < self.min_tokens:
            return
        key = tokens.tobytes()
        if key in self._states:
            self._states.move_to_end(key)
            return
        ctx = llm._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(ctx, buffer, size)
        if written > self.capacity_bytes:
            return
        state = SavedState(tokens.copy(), ctypes.string_at(buffer, written))
        self._states[key] = state
        self._bytes += state.size
        while self._bytes > self.capacity_bytes:
            _, dropped = self._states.popitem(last=False)
            self._bytes -= dropped.size

    @staticmethod
    def restore(llm: Llama, state: SavedState) -> None:
        """Put the saved KV back and make llama-cpp-python's bookkeeping match it."""
        data = (ctypes.c_uint8 * state.size).from_buffer_copy(state.data)
        llama_cpp.llama_state_set_data(llm._ctx.ctx, data, state.size)
        count = len(state.tokens)
        llm.input_ids[:count] = state.tokens
        llm.n_tokens = count
