"""Which embedded model answers plain questions: score, speed and size of the built-in GGUFs.

Each built-in model answers the same plain questions (capitals, units, arithmetic, one-line
instructions) greedily, (a) through llama-cpp-python called directly in this process, with the
turn format the gateway would use, and (b) through a running `modelyard serve` with the official
openai SDK. An answer scores when it contains one of the accepted facts (case-insensitive).
Prints a Markdown table.

    .venv/bin/python -m bench.model_quality [--models a,b] [--no-gateway] [--verbose]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import openai
from llama_cpp import Llama
from tests.e2e.server import start_gateway

from bench.local_model import Model as BenchModel
from bench.local_model import model_client
from modelyard.providers.local.model_file import resolve_model_path
from modelyard.providers.local.prompt import TURN_FORMATS, TemplateFormat, Turn, TurnFormat

# Catalog id -> built-in file; the turn format is the GGUF's own template, else `chat_format`.
MODELS = {
    "huggingface/smollm2-135m-instruct": ("builtin:smollm2-135m-instruct", None),
    "google/gemma-3-270m": ("builtin:gemma-3-270m", "gemma"),
}
# The models' cards, where the GGUF's general.license says nothing.
LICENCES = {
    "huggingface/smollm2-135m-instruct": "Apache-2.0",
    "google/gemma-3-270m": "Gemma Terms of Use",
}
MAX_TOKENS = 48

# (question, accepted answers): an answer scores if it contains any of them.
QUESTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("What is the capital of France?", ("paris",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("What is the capital of Italy?", ("rome",)),
    ("What is the capital of Germany?", ("berlin",)),
    ("What is the capital of Spain?", ("madrid",)),
    ("What is the capital of the United Kingdom?", ("london",)),
    ("How many centimetres are in a metre?", ("100", "hundred")),
    ("How many minutes are in an hour?", ("60", "sixty")),
    ("How many days are in a week?", ("7", "seven")),
    ("How many grams are in a kilogram?", ("1000", "1,000", "thousand")),
    ("How many seconds are in a minute?", ("60", "sixty")),
    ("What is 2 + 2?", ("4", "four")),
    ("What is 5 + 3?", ("8", "eight")),
    ("What is 10 - 4?", ("6", "six")),
    ("What is 3 times 3?", ("9", "nine")),
    ("What is 12 divided by 4?", ("3", "three")),
    ("At what temperature in Celsius does water freeze?", ("0", "zero")),
    ("What colour is the sky on a clear day?", ("blue",)),
    ("What is the largest planet in the solar system?", ("jupiter",)),
    ("Which planet is known as the Red Planet?", ("mars",)),
    ("What gas do plants absorb from the air?", ("carbon dioxide", "co2")),
    ("Who wrote Romeo and Juliet?", ("shakespeare",)),
    ("Say hello.", ("hello", "hi")),
    ("Reply with the word yes.", ("yes",)),
    ("Translate 'thank you' into French.", ("merci",)),
    ("What is the opposite of hot?", ("cold",)),
]


@dataclass
class Result:
    correct: int = 0
    tokens: int = 0
    seconds: float = 0.0
    answers: list[str] = field(default_factory=list)

    def add(self, answer: str, accepted: tuple[str, ...], tokens: int, seconds: float) -> None:
        self.correct += any(a in answer.lower() for a in accepted)
        self.tokens += tokens
        self.seconds += seconds
        self.answers.append(answer)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def turn_format(llm: Llama, chat_format: str | None) -> TurnFormat:
    if chat_format is not None:
        return TURN_FORMATS[chat_format]
    template = llm.metadata["tokenizer.chat_template"]
    bos = llm.detokenize([llm.token_bos()], special=True).decode()
    eos = llm.detokenize([llm.token_eos()], special=True).decode()
    return TemplateFormat(template, bos, eos)


def direct(path: Path, chat_format: str | None) -> tuple[Result, Llama]:
    llm = Llama(model_path=str(path), n_ctx=2048, verbose=False)
    render = turn_format(llm, chat_format)
    result = Result()
    for question, accepted in QUESTIONS:
        prompt = render([Turn("user", question)]).text
        tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        started = time.perf_counter()
        out = llm.create_completion(tokens, max_tokens=MAX_TOKENS, temperature=0)
        elapsed = time.perf_counter() - started
        answer = out["choices"][0]["text"]  # type: ignore[index]
        result.add(answer, accepted, out["usage"]["completion_tokens"], elapsed)  # type: ignore[index]
    return result, llm


def through_gateway(client: openai.OpenAI, model: str) -> Result:
    result = Result()
    for question, accepted in QUESTIONS:
        started = time.perf_counter()
        completion = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": question}],
            max_tokens=MAX_TOKENS,
            temperature=0,
        )
        elapsed = time.perf_counter() - started
        tokens = completion.usage.completion_tokens if completion.usage else 0
        result.add(completion.choices[0].message.content or "", accepted, tokens, elapsed)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated catalog ids")
    parser.add_argument("--no-gateway", action="store_true", help="only llama-cpp-python")
    parser.add_argument("--verbose", action="store_true", help="print every answer")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="modelyard-bench-"))
    rows: list[str] = []
    for model in args.models.split(","):
        upstream, chat_format = MODELS[model]
        path = resolve_model_path(upstream, data_dir, show_progress=False)
        result, llm = direct(path, chat_format)
        metadata = llm.metadata
        has_template = "yes" if "tokenizer.chat_template" in metadata else "no"
        licence = metadata.get("general.license") or LICENCES.get(model, "?")
        del llm
        gateway_cell = "-"
        if not args.no_gateway:
            gateway = start_gateway(data_dir / model.replace("/", "_"))
            try:
                client = model_client(gateway, BenchModel(model, upstream, chat_format))
                through = through_gateway(client, model)
            finally:
                gateway.stop()
            gateway_cell = f"{through.correct}/{len(QUESTIONS)}"
            if args.verbose:
                for (question, _), answer in zip(QUESTIONS, through.answers, strict=True):
                    print(f"[{model} gateway] {question} -> {answer!r}")
        if args.verbose:
            for (question, _), answer in zip(QUESTIONS, result.answers, strict=True):
                print(f"[{model} direct] {question} -> {answer!r}")
        size_mb = path.stat().st_size / 1e6
        rows.append(
            f"| {model} | {result.correct}/{len(QUESTIONS)} | {gateway_cell} "
            f"| {result.tokens_per_s:.1f} | {size_mb:.0f} MB | {licence} | {has_template} |"
        )
    print(
        "| model | score, direct | score, through modelyard | tokens/s, direct "
        "| file | licence | chat template in GGUF |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
