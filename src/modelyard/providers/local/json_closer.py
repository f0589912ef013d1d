"""Finish JSON that the token limit cut off, so that it parses and matches its schema.

`close_json(partial, schema)` returns the suffix to append. It walks the partial text with a
recursive-descent parser that follows the schema; where the text ends, the parser raises `_Cut`
carrying what the innermost open value still needs, and every enclosing value adds its own
needs (missing required properties, minItems, closing brackets) on the way back up.

The walk mirrors how llama.cpp's `SchemaConverter` (llama_cpp.llama_grammar) turns a schema into
a grammar, so a partial key is completed to a property the grammar could have been writing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

_FORMAT_TEMPLATES = {
    "date": "2000-01-01",
    "time": "00:00:00Z",
    "date-time": "2000-01-01T00:00:00Z",
    "uuid": "00000000-0000-0000-0000-000000000000",
}
_PAD = "_"  # what pads a string up to minLength
_MAX_NESTING = 32  # minimal values of self-recursive required chains stop here
_WS = " \t\r\n"
# Members and items of free-form JSON: any value, and `null` (valid at any depth) when one is due.
_FREE_VALUE: Schema = {"type": ["null", "boolean", "number", "string", "array", "object"]}
_STRING_TOKEN = re.compile(r"\\u[0-9a-fA-F]{0,4}|\\.|\\|[^\\]", re.DOTALL)
_HIGH = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}")  # first half of a surrogate pair
_NUMBER_PREFIX = re.compile(r"-?\d*(\.\d*)?([eE][-+]?\d*)?")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_STARTS = {"{": "object", "[": "array", '"': "string", "t": "boolean", "f": "boolean", "n": "null"}


def fixed_format(schema: Schema) -> str | None:
    """The template of a `format` the converter turns into a fixed-shape rule, if any."""
    fmt = schema.get("format")
    if not isinstance(fmt, str):
        return None
    if re.fullmatch(r"uuid[1-5]?", fmt):
        return _FORMAT_TEMPLATES["uuid"]
    return _FORMAT_TEMPLATES.get(fmt) if fmt in ("date", "time", "date-time") else None


def converter_branch(s: Schema) -> str:
    """Which branch of `SchemaConverter.visit` handles `s` (same order of checks)."""
    t = s.get("type")
    if "$ref" in s:
        return "ref"
    if "oneOf" in s or "anyOf" in s:
        return "union"
    if isinstance(t, list):
        return "types"
    if "const" in s or "enum" in s:
        return "literal"
    if t in (None, "object") and (
        "properties" in s or s.get("additionalProperties", True) is not True or "allOf" in s
    ):
        return "object"
    if t in (None, "array") and ("items" in s or "prefixItems" in s):
        return "array"
    if t in (None, "string") and ("pattern" in s or fixed_format(s)):
        return "string"
    if t == "object" or not s:
        return "object"  # the converter makes `{}` an object, too
    return t if isinstance(t, str) else "unknown"


def literal_text(value: Any) -> str:
    """How the grammar writes a JSON literal (a key, const or enum value): raw non-ASCII."""
    return json.dumps(value, ensure_ascii=False)


def resolve_pointer(root: Any, pointer: str) -> Any:
    """What a JSON pointer ("/a/0"; "" is the root) names inside `root`; LookupError if nothing."""
    node = root
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise LookupError(pointer) from None
    return node


@dataclass
class _ObjectView:
    props: dict[str, Any] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)  # in the order the grammar emits them
    optional: list[str] = field(default_factory=list)
    additional: Any = None  # schema of other keys; None: the grammar allows none


class _Cut(Exception):
    """The text ended inside a value; `suffix` completes it."""

    def __init__(self, suffix: str) -> None:
        super().__init__(suffix)
        self.suffix = suffix


class _Mismatch(Exception):
    """The text is not a prefix of any value of this schema."""


def close_json(text: str, schema: Schema | None) -> str:
    """The suffix that makes `text` (a prefix of a grammar-allowed output) complete, valid JSON.

    "" when `text` is already a complete value. Never raises: text the grammar could not have
    produced gets a best-effort (structure-only) close, or "" if even that fails.
    """
    closer = _Closer(text, schema if schema is not None else {"type": "object"})
    for attempt in (closer.root, {}):
        try:
            closer.value(closer.ws(0), attempt)
        except _Cut as cut:
            return cut.suffix
        except (_Mismatch, ValueError, RecursionError):
            continue
        return ""  # complete already (trailing junk, which no grammar allows, is left alone)
    return ""


class _Closer:
    def __init__(self, text: str, root: Schema) -> None:
        self.text = text
        self.root = root

    # -- schemas ---------------------------------------------------------------------------
    def resolve(self, s: Any) -> Schema:
        for _ in range(_MAX_NESTING):
            if s is True:
                return {}
            if not isinstance(s, dict):
                raise _Mismatch
            ref = s.get("$ref")
            if not isinstance(ref, str):
                return s
            s = self.pointer(ref)
        raise _Mismatch

    def pointer(self, ref: str) -> Any:
        try:
            return resolve_pointer(self.root, ref.removeprefix("#"))
        except LookupError:
            raise _Mismatch from None

    def view(self, s: Schema) -> _ObjectView:
        """Properties the way `SchemaConverter._build_object_rule` sees them."""
        v = _ObjectView()
        required = set(s.get("required") or ())
        if "properties" in s or s.get("additionalProperties", True) is not True:
            v.props = dict(s.get("properties") or {})
            extra = s.get("additionalProperties")
            v.additional = {} if extra is True else extra if isinstance(extra, dict) else None
        elif "allOf" in s:  # merged like the converter: every property of a plain part is required
            required = set()
            for part in map(self.resolve, s["allOf"]):
                alts = [self.resolve(a) for a in part["anyOf"]] if "anyOf" in part else [part]
                for alt in alts:
                    for name, sub in (alt.get("properties") or {}).items():
                        v.props.setdefault(name, sub)
                        if "anyOf" not in part:
                            required.add(name)
        else:
            v.additional = _FREE_VALUE
        v.required = [k for k in v.props if k in required]
        v.required += [k for k in s.get("required") or () if k not in v.props]
        v.optional = [k for k in v.props if k not in required]
        return v

    def member(self, v: _ObjectView, key: str) -> Any:
        if key in v.props:
            return v.props[key]
        if v.additional is None:
            raise _Mismatch
        return v.additional

    def key_order(self, v: _ObjectView, present: list[str]) -> list[str]:
        """Declared keys not yet written, those the grammar allows next first."""
        missing = [k for k in v.required if k in v.props and k not in present]
        if missing:
            first = missing[:1]
        else:
            last = max((v.optional.index(k) for k in present if k in v.optional), default=-1)
            first = [k for k in v.optional[last + 1 :] if k not in present]
        return first + [k for k in v.props if k not in present and k not in first]

    # -- minimal values ----------------------------------------------------------------------
    def minimal(self, s: Any, depth: int = 0) -> str:
        """The shortest reasonable JSON text valid for `s`."""
        try:
            s = self.resolve(s)
        except _Mismatch:
            return "null"
        alts = s.get("anyOf") or s.get("oneOf")
        if depth > _MAX_NESTING:
            return "null"
        if alts:  # the first alternative that can hold a value
            return self.minimal(next((a for a in alts if a is not False), alts[0]), depth + 1)
        if "const" in s:
            return literal_text(s["const"])
        if "enum" in s:
            return literal_text(s["enum"][0]) if s["enum"] else "null"
        kind = converter_branch(s)
        if kind == "types":
            kind = s["type"][0] if s["type"] else "null"
        if kind == "object":
            v = self.view(s)
            kvs = (
                f"{literal_text(k)}:{self.minimal(self.any_member(v, k), depth + 1)}"
                for k in v.required
            )
            return "{" + ",".join(kvs) + "}"
        if kind == "array":
            count = self.items_needed(s)
            return (
                "[" + ",".join(self.minimal(self.item(s, k), depth + 1) for k in range(count)) + "]"
            )
        if kind == "string":
            return '"' + _finish_string("", s) + '"'
        if kind in ("integer", "number"):
            return _number(s, kind == "integer")
        return {"boolean": "false"}.get(kind, "null")

    def any_member(self, v: _ObjectView, key: str) -> Any:
        return v.props.get(key, v.additional if v.additional is not None else {})

    def item(self, s: Schema, k: int) -> Any:
        tup = _tuple(s)
        if k < len(tup):
            return tup[k]
        return s["items"] if isinstance(s.get("items"), dict) else _FREE_VALUE

    def items_needed(self, s: Schema) -> int:
        """The converter writes a tuple's items all; others need minItems."""
        return max(int(s.get("minItems", 0)), len(_tuple(s)))

    # -- the walk ----------------------------------------------------------------------------
    def ws(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in _WS:
            i += 1
        return i

    def value(self, i: int, s: Any) -> int:
        """Parse the value at i; the index after it, or raise _Cut / _Mismatch."""
        s = self.resolve(s)
        alts = s.get("anyOf") or s.get("oneOf")
        if alts:  # the first alternative the text fits wins
            for alt in alts:
                try:
                    return self.value(i, alt)
                except _Mismatch:
                    continue
            raise _Mismatch
        if i >= len(self.text):
            raise _Cut(self.minimal(s))
        if "const" in s or "enum" in s:
            return self.literal(i, [s["const"]] if "const" in s else list(s["enum"]))
        found = _STARTS.get(self.text[i], "number")
        t = s.get("type")
        types = [t] if isinstance(t, str) else t if isinstance(t, list) else None
        if (
            types is not None
            and found not in types
            and not (found == "number" and "integer" in types)
        ):
            raise _Mismatch
        if found == "object":
            return self.object(i, s)
        if found == "array":
            return self.array(i, s)
        if found == "string":
            end = self.string_end(i)
            if end is None:
                raise _Cut(_finish_string(self.text[i + 1 :], s) + '"')
            return end
        if found == "number":
            return self.number(i, types is not None and "number" not in types)
        return self.literal(i, [True, False] if found == "boolean" else [None])

    def literal(self, i: int, options: list[Any]) -> int:
        texts = [literal_text(o) for o in options]  # exactly what the grammar's literal rule holds
        full = [t for t in texts if self.text.startswith(t, i)]
        if full:
            return i + max(map(len, full))
        rest = self.text[i:]
        for t in texts:
            if t.startswith(rest):
                raise _Cut(t[len(rest) :])
        raise _Mismatch

    def number(self, i: int, integer: bool) -> int:
        m = _NUMBER_PREFIX.match(self.text, i)
        assert m is not None  # the pattern matches the empty string
        token = m.group()
        if integer and (m.group(1) or m.group(2)):
            raise _Mismatch
        if _NUMBER.fullmatch(token):
            return m.end()
        if m.end() < len(self.text) or token == "":
            raise _Mismatch
        raise _Cut("0")  # "-", "1.", "1e", "1e-" all need one more digit

    def string_end(self, i: int) -> int | None:
        j, n = i + 1, len(self.text)
        while j < n:
            ch = self.text[j]
            if ch == '"':
                return j + 1
            j += 2 if ch == "\\" else 1
        return None

    def object(self, i: int, s: Schema) -> int:
        v = self.view(s)
        present: list[str] = []
        i = self.ws(i + 1)
        if i >= len(self.text):
            raise _Cut(self.finish(v, present, need_member=False))
        if self.text[i] == "}":
            return i + 1
        while True:
            if self.text[i] != '"':
                raise _Mismatch
            end = self.string_end(i)
            if end is None:
                raise _Cut(self.finish_key(v, present, self.text[i + 1 :]))
            key = json.loads(self.text[i:end])
            sub = self.member(v, key)
            present.append(key)
            i = self.ws(end)
            if i >= len(self.text):
                raise _Cut(":" + self.minimal(sub) + self.finish(v, present, need_member=False))
            if self.text[i] != ":":
                raise _Mismatch
            try:
                i = self.ws(self.value(self.ws(i + 1), sub))
            except _Cut as cut:
                raise _Cut(cut.suffix + self.finish(v, present, need_member=False)) from None
            if i >= len(self.text):
                raise _Cut(self.finish(v, present, need_member=False))
            if self.text[i] == "}":
                return i + 1
            if self.text[i] != ",":
                raise _Mismatch
            i = self.ws(i + 1)
            if i >= len(self.text):
                raise _Cut(self.finish(v, present, need_member=True))

    def finish_key(self, v: _ObjectView, present: list[str], raw: str) -> str:
        """Complete a cut key (raw: its text after the opening quote) and its value."""
        for name in self.key_order(v, present):
            literal = literal_text(name)  # the grammar writes declared keys as this literal
            if literal[1:].startswith(raw):
                tail = self.finish(v, [*present, name], need_member=False)
                return literal[1 + len(raw) :] + ":" + self.minimal(v.props[name]) + tail
        if v.additional is None:
            raise _Mismatch
        closed = _finish_string(raw, {}) + '"'
        key = json.loads('"' + raw + closed)
        tail = self.finish(v, [*present, key], need_member=False)
        return closed + ":" + self.minimal(v.additional) + tail

    def finish(self, v: _ObjectView, present: list[str], *, need_member: bool) -> str:
        """Missing required members, then "}". need_member: right after a comma."""
        keys = [k for k in v.required if k not in present]
        if need_member and not keys:
            keys = self.key_order(v, present)[:1]
            if not keys:  # only additional properties can follow
                keys = [next(k for k in (_PAD * n for n in range(99)) if k not in present)]
        parts = [f"{literal_text(k)}:{self.minimal(self.any_member(v, k))}" for k in keys]
        lead = "," if parts and present and not need_member else ""
        return lead + ",".join(parts) + "}"

    def array(self, i: int, s: Schema) -> int:
        count = 0
        i = self.ws(i + 1)
        if i >= len(self.text):
            raise _Cut(self.fill(s, 0))
        if self.text[i] == "]":
            return i + 1
        while True:
            try:
                i = self.ws(self.value(i, self.item(s, count)))
            except _Cut as cut:
                raise _Cut(cut.suffix + self.fill(s, count + 1)) from None
            count += 1
            if i >= len(self.text):
                raise _Cut(self.fill(s, count))
            if self.text[i] == "]":
                return i + 1
            if self.text[i] != ",":
                raise _Mismatch
            i = self.ws(i + 1)
            if i >= len(self.text):
                raise _Cut(self.minimal(self.item(s, count)) + self.fill(s, count + 1))

    def fill(self, s: Schema, count: int) -> str:
        """Items up to minItems (or the tuple's length), then "]"."""
        extra = [self.minimal(self.item(s, k)) for k in range(count, self.items_needed(s))]
        return ("," if extra and count else "") + ",".join(extra) + "]"


def _tuple(s: Schema) -> list[Any]:
    for key in ("prefixItems", "items"):
        if isinstance(s.get(key), list):
            return list(s[key])
    return []


def _finish_string(raw: str, s: Schema) -> str:
    """What completes a string's content `raw` (cut, escapes and all) before the closing quote."""
    tokens = _STRING_TOKEN.findall(raw)
    last = tokens[-1] if tokens else ""
    after_high = len(tokens) > 1 and _HIGH.fullmatch(tokens[-2]) is not None
    suffix = ""
    if last == "\\":  # a lone backslash: an escaped backslash, or the low half of a pair
        suffix = "udc00" if after_high else "\\"
    elif last.startswith("\\u") and len(last) < 6:
        digits = last[2:]
        low = re.fullmatch(r"[dD][c-fC-F][0-9a-fA-F]{2}", digits + "dc00"[len(digits) :])
        suffix = "dc00"[len(digits) :] if after_high and low else "0" * (4 - len(digits))
    if _HIGH.fullmatch(last + suffix):
        suffix += "\\udc00"  # pair a lone high surrogate
    try:
        content = json.loads('"' + raw + suffix + '"')
    except ValueError:
        content = raw
    template = fixed_format(s)
    if template is not None:
        suffix += _finish_format(content, template)
    elif s.get("type") in (None, "string"):
        suffix += _PAD * max(0, int(s.get("minLength", 0)) - len(content))
    return suffix


def _finish_format(content: str, template: str) -> str:
    """Complete a date/time/date-time/uuid string from its template (all fixed-width but zones)."""
    fixed = len(template) - 1 if template.endswith("Z") else len(template)
    if len(content) < fixed:
        return template[len(content) :]
    tail = content[fixed:]
    if fixed == len(template) or tail[-1:] == "Z":
        return ""
    if tail.startswith("."):  # ".123": always three digits in the grammar
        if len(tail) < 4:
            return "0" * (4 - len(tail)) + "Z"
        tail = tail[4:]
    return "+00:00"[len(tail) :] if tail else "Z"


def _number(s: Schema, integer: bool) -> str:
    """The value nearest 0 inside minimum/maximum (exclusive ones too), as JSON."""
    lo, lo_strict = _limit(s, "minimum", "exclusiveMinimum", max)
    hi, hi_strict = _limit(s, "maximum", "exclusiveMaximum", min)
    value: float = 0
    if integer:
        if lo is not None:
            value = max(value, math.floor(lo) + 1 if lo_strict else math.ceil(lo))
        if hi is not None:
            value = min(value, math.ceil(hi) - 1 if hi_strict else math.floor(hi))
    else:
        if lo is not None and (value < lo or (lo_strict and value <= lo)):
            value = lo + 1 if lo_strict else lo
        if hi is not None and (value > hi or (hi_strict and value >= hi)):
            value = hi - 1 if hi_strict else hi
            if lo is not None and (value < lo or (lo_strict and value <= lo)):
                value = (lo + hi) / 2
    step = _num(s.get("multipleOf"))
    if step is not None and step > 0 and value % step:
        value = math.ceil(value / step) * step
    if not math.isfinite(value):
        return "0"
    return str(int(value)) if integer or float(value).is_integer() else repr(float(value))


def _limit(s: Schema, plain: str, exclusive: str, tighter: Any) -> tuple[float | None, bool]:
    """A bound and whether it is exclusive (draft 4 booleans and draft 6+ numbers alike)."""
    value, ex = _num(s.get(plain)), s.get(exclusive)
    if ex is True:
        return value, value is not None
    ex_value = _num(ex)
    if ex_value is not None and (value is None or tighter(ex_value, value) == ex_value):
        return ex_value, True
    return value, False


def _num(x: Any) -> float | None:
    return x if isinstance(x, int | float) and not isinstance(x, bool) else None
