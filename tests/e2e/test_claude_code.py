"""Claude Code, the real CLI from npm, runs one `claude -p` turn through the gateway.

Claude Code speaks only the Anthropic Messages API: it sends one streamed
POST /v1/messages?beta=true with a ~12k-token prompt (system blocks with cache_control,
12 tools, a mid-conversation `system` message, adaptive thinking, max_tokens 32000; a
captured body is tests/fixtures/claude_code/messages_request.json). Here the model is
served by an OpenAI-kind upstream (tests/fakes/openai_chat.py), so the request is
translated both ways, and the turn must also land in the ledger with its tokens and cost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.node_tools import (
    ToolRun,
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

CLAUDE_CODE = ("@anthropic-ai/claude-code", "2.1.332", "claude")
MODEL = "test/coder"
MAX_OUTPUT = 8192  # below Claude Code's max_tokens of 32000: the gateway must clamp
PROMPT_PRICE, COMPLETION_PRICE = Decimal(3), Decimal(15)  # USD per million tokens
PROMPT = "Say hello to the model yard"
CLAUDE_TIMEOUT_S = 120
# Claude Code's own opening system block, the one this test looks for upstream.
AGENT_SYSTEM = "You are a Claude agent, built on Anthropic's Claude Agent SDK."


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    return installed_cli(CLAUDE_CODE, lambda version: version.startswith(CLAUDE_CODE[1]))


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIChat]:
    with FakeOpenAIChat() as fake:
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
        max_output=MAX_OUTPUT,
    )
    with catalog_gateway(tmp_path_factory.mktemp("claude-code-gateway"), catalog) as running:
        yield running


@pytest.fixture(scope="module")
def app_key(gateway: RunningGateway) -> str:
    return new_app_key(gateway, "claude-code", MODEL, "CODER")


class Turn(ToolRun):
    def outcome(self) -> str:
        """What the turn printed after its long `init` event."""
        shown = [e for e in self.events if e.get("subtype") != "init"]
        return "\n".join(json.dumps(e) for e in shown) or self.stdout


def run_claude(claude: Path, base_url: str, auth: tuple[str, str], workdir: Path) -> Turn:
    """One non-interactive turn. The environment is built from nothing, so the user's own
    keys, config and CLAUDE.md play no part; HOME and the working folder are fresh."""
    env, project = fresh_home(
        workdir,
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_MODEL=MODEL,
        ANTHROPIC_SMALL_FAST_MODEL=MODEL,
        ANTHROPIC_DEFAULT_HAIKU_MODEL=MODEL,
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        # A failing gateway fails the turn at once instead of after minutes of backoff.
        CLAUDE_CODE_MAX_RETRIES="0",
        API_TIMEOUT_MS=str(CLAUDE_TIMEOUT_S * 1000),
        **{auth[0]: auth[1]},
    )
    command = [str(claude), "-p", PROMPT, "--output-format", "stream-json", "--verbose"]
    return run_json_lines(command, cwd=project, env=env, timeout_s=CLAUDE_TIMEOUT_S, run=Turn)


def generation(gw: RunningGateway, key: str, gen_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(
            gw.api_url + "/generation",
            params={"id": gen_id},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        if response.status_code == 200:
            data: dict[str, Any] = response.json()["data"]
            return data
        assert response.status_code == 404, response.text
        assert time.monotonic() < deadline, f"{gen_id} was never recorded:\n{gw.log()[-4000:]}"
        time.sleep(0.05)


# Claude Code sends ANTHROPIC_AUTH_TOKEN as Authorization: Bearer, ANTHROPIC_API_KEY as
# x-api-key; both are how its users point it at a gateway.
@pytest.mark.parametrize("key_variable", ["ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY"])
def test_claude_code_answers_through_an_openai_upstream(
    key_variable: str,
    claude_bin: Path,
    gateway: RunningGateway,
    app_key: str,
    upstream: FakeOpenAIChat,
    tmp_path: Path,
) -> None:
    seen_before = len(upstream.received)
    turn = run_claude(claude_bin, gateway.base_url, (key_variable, app_key), tmp_path)
    assert turn.returncode == 0, (
        f"claude -p exited {turn.returncode}\n{turn.outcome()}\nstderr:\n{turn.stderr}\n"
        f"gateway log:\n{gateway.log()[-6000:]}"
    )

    # One streamed upstream call: a stream the client could not read would have made
    # Claude Code send the turn again without streaming.
    received = upstream.received[seen_before:]
    assert len(received) == 1, [r.body.get("stream") for r in received]
    sent = received[0].body
    assert sent["stream"] is True
    assert sent["model"] == "coder-upstream"
    assert sent["max_tokens"] == MAX_OUTPUT
    messages = sent["messages"]
    assert messages[0]["role"] == "system"
    system_texts = [text_of(m["content"]) for m in messages if m["role"] == "system"]
    assert any(AGENT_SYSTEM in text for text in system_texts), system_texts
    user_texts = [text_of(m["content"]) for m in messages if m["role"] == "user"]
    assert any(PROMPT in text for text in user_texts), user_texts
    tool_names = {tool["function"]["name"] for tool in sent["tools"]}
    assert {"Bash", "Read", "Edit", "Write"} <= tool_names

    # The fake answers "Echo: " and the text of the last message it was sent.
    answer = "Echo: " + text_of(messages[-1]["content"])
    result = turn.event("result")
    assert result["is_error"] is False and result["subtype"] == "success"
    assert result["result"].strip() == answer.strip()
    usage = upstream.usages[seen_before]
    assert result["usage"]["input_tokens"] == usage["prompt_tokens"]
    assert result["usage"]["output_tokens"] == usage["completion_tokens"]

    # The message id Claude Code was given is the gateway's generation id.
    gen_id = turn.event("assistant")["message"]["id"]
    row = generation(gateway, app_key, gen_id)
    assert row["model"] == MODEL
    assert row["app"] == "claude-code"
    assert row["status"] == 200 and row["cancelled"] is False
    assert row["streamed"] is True
    assert row["tokens_prompt"] == usage["prompt_tokens"] > 1000
    assert row["tokens_completion"] == usage["completion_tokens"] > 0
    cost = (
        row["tokens_prompt"] * PROMPT_PRICE + row["tokens_completion"] * COMPLETION_PRICE
    ) / 1_000_000
    assert Decimal(str(row["total_cost"])) == cost > 0
