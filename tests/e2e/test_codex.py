"""Codex CLI, the real one from npm, runs `codex exec` turns through /v1/responses.

Codex speaks only the Responses API. For a custom model provider (`wire_api = "responses"`)
a turn is one streamed POST /v1/responses with store false and no `instructions`: its
17 KB system prompt comes as developer messages in `input`, then the environment and the
user's words as user messages; the tools are flat function tools, a `namespace` of
function tools and a hosted `web_search` (a captured body is
tests/fixtures/codex/responses_request.json, the follow-up after a tool call
responses_request_tool_result.json). It needs nothing else from the gateway, and a turn
fails unless the stream ends with response.completed. Here the model is served by an
OpenAI chat-completions upstream (tests/fakes/openai_chat.py), so the request is
translated both ways, and the turn must land in the ledger under the api "responses".
When the model calls Codex's `exec_command`, Codex runs it and sends the whole
conversation again with the call and its output (store false, no previous_response_id).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.node_tools import (
    ToolRun,
    admin,
    catalog_gateway,
    fresh_home,
    installed_cli,
    new_app_key,
    one_model_catalog,
    run_json_lines,
    text_of,
)
from tests.e2e.server import RunningGateway
from tests.fakes.openai_chat import FakeOpenAIChat

CODEX = ("@openai/codex", "0.171.0", "codex")
MODEL = "test/codex-coder"
PROMPT_PRICE, COMPLETION_PRICE = Decimal(3), Decimal(15)  # USD per million tokens
PROMPT = "Say hello to the model yard"
RUN_PROMPT = "Run the yard's echo"
RUN_COMMAND = "echo tool-output-42"
CODEX_TIMEOUT_S = 120
KEY_VARIABLE = "MODELYARD_TEST_KEY"
# The opening of Codex's own system prompt, the one this test looks for upstream.
AGENT_PROMPT = "You are a coding agent running in the Codex CLI"


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    return installed_cli(CODEX, lambda version: version.split()[-1:] == [CODEX[1]])


class CodexUpstream(FakeOpenAIChat):
    """The chat fake, which also calls Codex's `exec_command` when asked to run the echo."""

    def _answer(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        last = body["messages"][-1]
        if last["role"] == "user" and RUN_PROMPT in text_of(last["content"]):
            function = {"name": "exec_command", "arguments": json.dumps({"cmd": RUN_COMMAND})}
            call = {"id": "call_echo", "type": "function", "function": function}
            return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        return super()._answer(body)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIChat]:
    with CodexUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAIChat
) -> Iterator[RunningGateway]:
    catalog = one_model_catalog(
        upstream.base_url,
        MODEL,
        "coder-upstream",
        (PROMPT_PRICE, COMPLETION_PRICE),
        name="A coding model behind an OpenAI-compatible upstream",
        context_length=131072,
        max_output=8192,
    )
    with catalog_gateway(tmp_path_factory.mktemp("codex-gateway"), catalog) as running:
        yield running


def new_app(gw: RunningGateway, name: str) -> str:
    """A fresh app with the model attached, so its usage is one test's alone; its key."""
    return new_app_key(gw, name, MODEL, "CODER")


class Turn(ToolRun):
    def report(self) -> str:
        return f"codex exec exited {self.returncode}\n{self.stdout}\nstderr:\n{self.stderr}"

    def answers(self) -> list[str]:
        items = [e["item"] for e in self.events if e.get("type") == "item.completed"]
        return [item["text"] for item in items if item.get("type") == "agent_message"]


def run_codex(codex: Path, base_url: str, key: str, workdir: Path, prompt: str = PROMPT) -> Turn:
    """One non-interactive turn. The environment is built from nothing and CODEX_HOME is
    fresh, so the user's own config, keys and AGENTS.md play no part."""
    codex_home = workdir / "codex-home"
    env, project = fresh_home(workdir, CODEX_HOME=str(codex_home), **{KEY_VARIABLE: key})
    codex_home.mkdir()
    # --strict-config below makes a key this Codex no longer knows an error, not a no-op.
    (codex_home / "config.toml").write_text(
        f"""
model_provider = "modelyard"
model = "{MODEL}"
check_for_update_on_startup = false

[analytics]
enabled = false

[model_providers.modelyard]
name = "modelyard"
base_url = "{base_url}/v1"
env_key = "{KEY_VARIABLE}"
wire_api = "responses"
# Codex retries even a 401 five times with backoff; a failing gateway should fail at once.
request_max_retries = 0
stream_max_retries = 0
"""
    )
    command = [str(codex), "exec", "--json", "--strict-config", "--ephemeral"]
    command += ["--skip-git-repo-check", "--sandbox", "read-only", prompt]
    return run_json_lines(command, cwd=project, env=env, timeout_s=CODEX_TIMEOUT_S, run=Turn)


def responses_usage(gw: RunningGateway, app: str, requests: int) -> dict[str, Any]:
    """The app's one usage row (today, the model, the Responses API), once the ledger
    writer has all `requests` in it."""
    deadline = time.monotonic() + 10
    while True:
        rows = admin(gw, "GET", f"/apps/{app}/usage?days=1")["data"]
        assert all(row["api"] == "responses" and row["model"] == MODEL for row in rows), rows
        assert len(rows) <= 1, rows
        if rows and rows[0]["requests"] >= requests:
            row: dict[str, Any] = rows[0]
            assert row["requests"] == requests, rows
            return row
        assert time.monotonic() < deadline, f"{requests} not in {rows}:\n{gw.log()[-4000:]}"
        time.sleep(0.05)


def assert_billed(row: dict[str, Any], usages: list[dict[str, Any]]) -> None:
    prompt = sum(usage["prompt_tokens"] for usage in usages)
    completion = sum(usage["completion_tokens"] for usage in usages)
    assert row["tokens_prompt"] == prompt > 1000
    assert row["tokens_completion"] == completion > 0
    cost = (prompt * PROMPT_PRICE + completion * COMPLETION_PRICE) / 1_000_000
    assert Decimal(str(row["cost"])) == cost > 0


def test_codex_answers_through_an_openai_upstream(
    codex_bin: Path, gateway: RunningGateway, upstream: FakeOpenAIChat, tmp_path: Path
) -> None:
    key = new_app(gateway, "codex")
    seen_before = len(upstream.received)
    turn = run_codex(codex_bin, gateway.base_url, key, tmp_path)
    assert turn.returncode == 0, f"{turn.report()}\ngateway log:\n{gateway.log()[-6000:]}"

    # One streamed upstream call for the one Responses request a text turn makes.
    received = upstream.received[seen_before:]
    assert len(received) == 1, [r.body.get("stream") for r in received]
    sent = received[0].body
    assert sent["stream"] is True
    assert sent["model"] == "coder-upstream"
    messages = sent["messages"]
    # Codex's instructions are developer messages (its prompt, then skills and permissions),
    # then the environment and the user's words: they go upstream as they came.
    assert [m["role"] for m in messages] == ["developer", "developer", "user", "user"]
    assert AGENT_PROMPT in text_of(messages[0]["content"])
    assert text_of(messages[-1]["content"]) == PROMPT
    # Codex's function tools reach a chat upstream as functions, those in its `namespace`
    # tool named <namespace>__<name>; its hosted web_search is left out.
    assert all(tool["type"] == "function" for tool in sent["tools"])
    tool_names = {tool["function"]["name"] for tool in sent["tools"]}
    assert {"exec_command", "write_stdin", "multi_agent_v1__spawn_agent"} <= tool_names
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is True

    # The fake answers "Echo: " and the text of the last message it was sent.
    assert turn.answers() == ["Echo: " + PROMPT], turn.report()
    usage = upstream.usages[seen_before]
    reported = turn.event("turn.completed")["usage"]
    assert reported["input_tokens"] == usage["prompt_tokens"]
    assert reported["output_tokens"] == usage["completion_tokens"]
    assert_billed(responses_usage(gateway, "codex", requests=1), [usage])


def test_codex_runs_the_command_the_model_calls_for(
    codex_bin: Path, gateway: RunningGateway, upstream: FakeOpenAIChat, tmp_path: Path
) -> None:
    key = new_app(gateway, "codex-tools")
    seen_before = len(upstream.received)
    turn = run_codex(codex_bin, gateway.base_url, key, tmp_path, RUN_PROMPT)
    assert turn.returncode == 0, f"{turn.report()}\ngateway log:\n{gateway.log()[-6000:]}"

    # The streamed function call reached Codex whole: it ran the command.
    commands = [
        e["item"]
        for e in turn.events
        if e.get("type") == "item.completed" and e["item"].get("type") == "command_execution"
    ]
    assert len(commands) == 1, turn.report()
    assert RUN_COMMAND in commands[0]["command"] and commands[0]["exit_code"] == 0
    assert commands[0]["aggregated_output"] == "tool-output-42\n"

    # Codex then sent the conversation again with the call and its output, which went
    # upstream as the assistant's tool call and the tool message answering it.
    received = upstream.received[seen_before:]
    assert len(received) == 2, [r.body["messages"][-1] for r in received]
    first, second = (r.body["messages"] for r in received)
    assert second[: len(first)] == first
    call, result = second[len(first) :]
    assert call["role"] == "assistant"
    (tool_call,) = call["tool_calls"]
    assert tool_call["id"] == "call_echo"
    assert tool_call["function"]["name"] == "exec_command"
    assert json.loads(tool_call["function"]["arguments"]) == {"cmd": RUN_COMMAND}
    assert result["role"] == "tool" and result["tool_call_id"] == "call_echo"
    assert "tool-output-42" in text_of(result["content"])

    # The fake answers a tool message with "Tool said: " and its content.
    assert turn.answers() == ["Tool said: " + text_of(result["content"])], turn.report()
    usages = upstream.usages[seen_before:]
    reported = turn.event("turn.completed")["usage"]
    assert reported["input_tokens"] == sum(u["prompt_tokens"] for u in usages)
    assert reported["output_tokens"] == sum(u["completion_tokens"] for u in usages)
    assert_billed(responses_usage(gateway, "codex-tools", requests=2), usages)


def test_codex_shows_the_gateway_refusing_an_unknown_key(
    codex_bin: Path, gateway: RunningGateway, upstream: FakeOpenAIChat, tmp_path: Path
) -> None:
    seen_before = len(upstream.received)
    turn = run_codex(codex_bin, gateway.base_url, "sk-not-a-modelyard-key", tmp_path)
    assert turn.returncode == 1, turn.report()
    failed = turn.event("turn.failed")["error"]["message"]
    # Codex quotes a 401's status and its error.message, so the gateway's words reach the user.
    assert "401 Unauthorized: Invalid API key." in failed, failed
    assert "/v1/responses" in failed, failed
    assert len(upstream.received) == seen_before
