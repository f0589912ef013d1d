"""Does `tool_choice: "auto"` call a tool when a prompt plainly needs one, and only then?

Runs the embedded SmolLM2 through a real `modelyard serve` with the official openai SDK,
temperature 0, three tools offered on every request. Two prompt sets: prompts that plainly need
one of the tools, and prompts that plainly do not (greetings, writing, general knowledge the
tools do not cover). Prints the share of tool calls on each set, the share of calls to the right
tool, arguments that match the tool's schema, and how many calls were not valid JSON (must be 0).

    .venv/bin/python -m bench.tools_auto [--model ID] [--stream] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import jsonschema
import openai
from tests.e2e.server import start_gateway

from bench.local_model import Model as BenchModel
from bench.local_model import model_client

MODEL = "huggingface/smollm2-135m-instruct"
BUILTIN = "builtin:smollm2-135m-instruct"
MAX_TOKENS = 64


def _tool(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "required": list(properties)}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


TOOLS: list[dict[str, Any]] = [
    _tool(
        "get_weather",
        "Get the current weather in a city.",
        {"city": {"type": "string", "description": "The city, e.g. Paris"}},
    ),
    _tool(
        "convert_currency",
        "Convert an amount of money from one currency to another.",
        {
            "amount": {"type": "number"},
            "from_currency": {"type": "string", "description": "ISO code, e.g. USD"},
            "to_currency": {"type": "string", "description": "ISO code, e.g. EUR"},
        },
    ),
    _tool(
        "get_stock_price",
        "Get the latest stock price for a ticker symbol.",
        {"ticker": {"type": "string", "description": "The ticker symbol, e.g. AAPL"}},
    ),
]

# (prompt, the tool it needs)
NEEDS: list[tuple[str, str]] = [
    ("What is the weather in Paris right now?", "get_weather"),
    ("What's the weather like in Tokyo today?", "get_weather"),
    ("Is it raining in London at the moment?", "get_weather"),
    ("Tell me the current weather in Berlin.", "get_weather"),
    ("How hot is it in Madrid right now?", "get_weather"),
    ("Check the weather in New York for me.", "get_weather"),
    ("Get the weather for Sydney.", "get_weather"),
    ("Convert 100 US dollars to euros.", "convert_currency"),
    ("How much is 50 EUR in Japanese yen?", "convert_currency"),
    ("Convert 20 GBP to USD.", "convert_currency"),
    ("I have 300 Canadian dollars. How many euros is that?", "convert_currency"),
    ("Change 75 euros into British pounds.", "convert_currency"),
    ("What is 1000 yen in US dollars?", "convert_currency"),
    ("Convert 10 USD to CHF.", "convert_currency"),
    ("What is Apple's stock price right now?", "get_stock_price"),
    ("Look up the stock price of MSFT.", "get_stock_price"),
    ("How much is one share of Tesla (TSLA) trading at?", "get_stock_price"),
    ("Get me the current price of NVDA stock.", "get_stock_price"),
    ("What's the latest stock price for Amazon, ticker AMZN?", "get_stock_price"),
    ("Check the share price of GOOGL.", "get_stock_price"),
    ("What is IBM stock trading at today?", "get_stock_price"),
    ("Weather in Rome, please.", "get_weather"),
]

PLAIN: list[str] = [
    "Hello!",
    "Hi, how are you?",
    "Good morning.",
    "Thank you very much!",
    "Write a short poem about the sea.",
    "Write a haiku about autumn leaves.",
    "Tell me a joke.",
    "Who wrote Romeo and Juliet?",
    "What is the capital of France?",
    "How many days are in a week?",
    "What is 2 + 2?",
    "Explain what photosynthesis is in one sentence.",
    "What is the largest planet in the solar system?",
    "Give me a synonym for happy.",
    "Translate 'thank you' into French.",
    "What is the opposite of hot?",
    "Suggest a name for a pet cat.",
    "Who painted the Mona Lisa?",
    "What does DNA stand for?",
    "Describe a cat in one sentence.",
    "What colour is the sky on a clear day?",
    "Say goodbye.",
]

SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}


def ask(client: openai.OpenAI, model: str, prompt: str, *, stream: bool) -> tuple[str, str] | str:
    """(tool name, arguments) for a tool call, else the text answer."""
    messages: Any = [{"role": "user", "content": prompt}]
    tools: Any = TOOLS
    if not stream:
        completion = client.chat.completions.create(
            model=model,
            messages=messages,
            tools=tools,
            tool_choice="auto",
            temperature=0,
            max_tokens=MAX_TOKENS,
        )
        message = completion.choices[0].message
        if message.tool_calls:
            call: Any = message.tool_calls[0]
            return call.function.name, call.function.arguments
        return message.content or ""
    name, arguments, text = "", "", ""
    for chunk in client.chat.completions.create(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice="auto",
        temperature=0,
        max_tokens=MAX_TOKENS,
        stream=True,
    ):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for piece in delta.tool_calls or ():
            if piece.function is not None:
                name += piece.function.name or ""
                arguments += piece.function.arguments or ""
    return (name, arguments) if name else text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--stream", action="store_true", help="ask with stream=True")
    parser.add_argument("--verbose", action="store_true", help="print every answer")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="modelyard-bench-"))
    gateway = start_gateway(data_dir)
    try:
        client = model_client(gateway, BenchModel(args.model, BUILTIN, None))
        started = time.perf_counter()
        needs_called = right_tool = schema_ok = invalid = plain_called = 0
        for prompt, expected in NEEDS:
            answer = ask(client, args.model, prompt, stream=args.stream)
            if args.verbose:
                print(f"[needs] {prompt} -> {answer!r}")
            if isinstance(answer, tuple):
                needs_called += 1
                name, arguments = answer
                right_tool += name == expected
                try:
                    value = json.loads(arguments)
                except ValueError:
                    invalid += 1
                    continue
                schema_ok += name in SCHEMAS and jsonschema.Draft202012Validator(
                    SCHEMAS[name]
                ).is_valid(value)
        for prompt in PLAIN:
            answer = ask(client, args.model, prompt, stream=args.stream)
            if args.verbose:
                print(f"[plain] {prompt} -> {answer!r}")
            if isinstance(answer, tuple):
                plain_called += 1
                try:
                    json.loads(answer[1])
                except ValueError:
                    invalid += 1
        elapsed = time.perf_counter() - started
    finally:
        gateway.stop()
    n, m = len(NEEDS), len(PLAIN)
    mode = "stream" if args.stream else "non-stream"
    print("| set | prompts | tool called | right tool | arguments match schema | invalid JSON |")
    print("|---|---|---|---|---|---|")
    print(
        f"| needs a tool ({mode}) | {n} | {needs_called}/{n} ({needs_called / n:.0%}) "
        f"| {right_tool}/{n} | {schema_ok}/{needs_called} | {invalid} |"
    )
    share = f"{plain_called}/{m} ({plain_called / m:.0%})"
    print(f"| needs no tool ({mode}) | {m} | {share} | - | - | - |")
    print(f"\n{n + m} requests in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
