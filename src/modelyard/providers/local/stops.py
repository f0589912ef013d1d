"""Stop sequences over streamed text: emit what cannot be the start of a stop string."""

from __future__ import annotations


class StopMatcher:
    """Feed text pieces; get back the text safe to emit, and whether a stop was hit.

    Text that might be the beginning of a stop sequence is held back until the next piece
    shows whether it is; `flush()` releases it when generation ends for another reason.
    """

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._held = ""
        self.stopped = False
        self.matched: str | None = None  # the stop sequence that was hit

    def feed(self, piece: str) -> str:
        if not self._stops:
            return piece
        text = self._held + piece
        first = -1
        for stop in self._stops:
            at = text.find(stop)
            if at >= 0 and (first < 0 or at < first):
                first = at
                self.matched = stop
        if first >= 0:
            self.stopped = True
            self._held = ""
            return text[:first]
        keep = self._longest_stop_prefix_suffix(text)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _longest_stop_prefix_suffix(self, text: str) -> int:
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:size]):
                    best = size
                    break
        return best
