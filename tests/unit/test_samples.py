"""The model page's code samples: the right URLs and model id, and the Python and curl ones run.

The Responses and Anthropic Python and curl samples run as written against a small HTTP
server standing where the gateway would: a base URL with /v1 in it would send the Anthropic
SDK to /v1/v1/messages, a base URL without it the OpenAI SDK to /responses; a missing
header or a body the API refuses would fail the run.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from openai.types.responses import Response, ResponseOutputMessage, ResponseOutputText

from modelyard.web.samples import code_samples
from tests.fakes.anthropic_rules import problem

MODEL = "anthropic/claude-haiku-4.5"
KEY = "my-app-key-123"


def test_every_sample_names_the_model_and_this_gateway() -> None:
    samples = code_samples("http://gw.example:8080/", MODEL)
    assert list(samples) == [
        "curl",
        "python",
        "javascript",
        "responses-curl",
        "responses-python",
        "responses-typescript",
        "anthropic-curl",
        "anthropic-python",
        "anthropic-typescript",
    ]
    for name, code in samples.items():
        assert f'"{MODEL}"' in code, name
        assert "gw.example:8080//" not in code, name
        assert "MODELYARD_API_KEY" in code, name


def test_openai_samples_use_the_v1_prefix() -> None:
    samples = code_samples("http://gw.example:8080", MODEL)
    assert "curl http://gw.example:8080/v1/chat/completions" in samples["curl"]
    assert 'OpenAI(base_url="http://gw.example:8080/v1"' in samples["python"]
    assert 'baseURL: "http://gw.example:8080/v1"' in samples["javascript"]


def test_responses_samples_create_a_response_under_the_v1_prefix() -> None:
    samples = code_samples("http://gw.example:8080/", MODEL)
    python, typescript = samples["responses-python"], samples["responses-typescript"]
    assert 'OpenAI(base_url="http://gw.example:8080/v1", api_key=' in python
    assert "client.responses.create(" in python and f'model="{MODEL}",' in python
    assert 'input="What is the meaning of life?",' in python
    assert "print(response.output_text)" in python
    assert 'import OpenAI from "openai";' in typescript
    assert 'baseURL: "http://gw.example:8080/v1",' in typescript
    assert "client.responses.create({" in typescript and f'model: "{MODEL}",' in typescript
    assert "console.log(response.output_text);" in typescript
    curl = samples["responses-curl"]
    assert "curl http://gw.example:8080/v1/responses" in curl
    assert '-H "Authorization: Bearer $MODELYARD_API_KEY"' in curl
    assert '"input": "What is the meaning of life?"' in curl


EMBEDDING_MODEL = "sentence-transformers/all-minilm-l6-v2"


def test_embedding_samples_call_v1_embeddings_and_nothing_else() -> None:
    samples = code_samples("http://gw.example:8080/", EMBEDDING_MODEL, embedding=True)
    assert list(samples) == ["curl", "python", "javascript"]
    assert "curl http://gw.example:8080/v1/embeddings" in samples["curl"]
    assert 'OpenAI(base_url="http://gw.example:8080/v1"' in samples["python"]
    assert "client.embeddings.create(" in samples["python"]
    assert 'baseURL: "http://gw.example:8080/v1"' in samples["javascript"]
    assert "client.embeddings.create({" in samples["javascript"]
    for name, code in samples.items():
        assert f'"{EMBEDDING_MODEL}"' in code, name
        assert "MODELYARD_API_KEY" in code, name
        assert "messages" not in code and "chat" not in code, name


def test_anthropic_samples_use_the_root_because_the_sdk_appends_v1_messages() -> None:
    samples = code_samples("http://gw.example:8080/", MODEL)
    python, typescript = samples["anthropic-python"], samples["anthropic-typescript"]
    assert 'Anthropic(base_url="http://gw.example:8080", api_key=' in python
    assert f'model="{MODEL}",' in python and "max_tokens=1024" in python
    assert 'import Anthropic from "@anthropic-ai/sdk";' in typescript
    assert 'baseURL: "http://gw.example:8080",' in typescript
    assert "max_tokens: 1024" in typescript and "client.messages.create(" in typescript
    curl = samples["anthropic-curl"]
    assert "curl http://gw.example:8080/v1/messages" in curl
    assert '-H "x-api-key: $MODELYARD_API_KEY"' in curl
    assert '-H "anthropic-version: 2023-06-01"' in curl


Seen = list[tuple[str, dict[str, str], Any]]  # path, headers, body of each request
Recorded = tuple[str, Seen]  # the base URL and what came to it


class Gateway(BaseHTTPRequestHandler):
    """Where the gateway would be: POST /v1/messages or /v1/responses with the app key
    answers a message or a response, any other path is a 404, a body the API would refuse
    a 400."""

    seen: Seen

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.seen.append((self.path, headers, body))
        keys = {headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer ")}
        if self.path == "/v1/responses":
            self._respond(headers, body)
        elif self.path == "/v1/embeddings":
            self._embed(headers, body)
        elif self.path != "/v1/messages":
            self._answer(404, {"type": "error", "error": {"type": "not_found_error"}})
        elif KEY not in keys:
            self._answer(401, {"type": "error", "error": {"type": "authentication_error"}})
        elif not headers.get("anthropic-version") or problem(body):
            self._answer(400, {"type": "error", "error": {"type": "invalid_request_error"}})
        else:
            self._answer(200, _message(body["model"]))

    def _respond(self, headers: dict[str, str], body: Any) -> None:
        if headers.get("authorization") != f"Bearer {KEY}":
            self._answer(401, {"error": {"type": "authentication_error"}})
        elif not isinstance(body.get("model"), str) or not body.get("input"):
            self._answer(400, {"error": {"type": "invalid_request_error"}})
        else:
            self._answer(200, _response(body["model"]))

    def _embed(self, headers: dict[str, str], body: Any) -> None:
        if headers.get("authorization") != f"Bearer {KEY}":
            self._answer(401, {"error": {"type": "authentication_error"}})
        elif not isinstance(body.get("model"), str) or not isinstance(body.get("input"), str):
            self._answer(400, {"error": {"type": "invalid_request_error"}})
        else:
            vector = [0.25, -0.5, 0.125]
            # The Python SDK asks for base64 unless told otherwise, and decodes it itself.
            encoded: Any = vector
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(struct.pack("<3f", *vector)).decode()
            self._answer(
                200,
                {
                    "object": "list",
                    "model": body["model"],
                    "data": [{"object": "embedding", "index": 0, "embedding": encoded}],
                    "usage": {"prompt_tokens": 9, "total_tokens": 9},
                },
            )

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def _message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "42"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 14, "output_tokens": 1},
    }


def _response(model: str) -> dict[str, Any]:
    # Built with the SDK's own type, so the answer has the shape the sample's SDK reads.
    text = ResponseOutputText(type="output_text", text="42", annotations=[])
    message = ResponseOutputMessage(
        type="message", id="msg_1", role="assistant", status="completed", content=[text]
    )
    response = Response(
        id="resp_1",
        object="response",
        created_at=1,
        model=model,
        output=[message],
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=[],
        status="completed",
    )
    return response.model_dump(mode="json")


@pytest.fixture
def gateway() -> Iterator[Recorded]:
    seen: Seen = []
    handler = type("Recording", (Gateway,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


ASKED = {
    "model": MODEL,
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "What is the meaning of life?"}],
}


def _run(argv: list[str]) -> str:
    env = {**os.environ, "MODELYARD_API_KEY": KEY}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_anthropic_python_sample_runs_as_written(gateway: Recorded) -> None:
    base_url, seen = gateway
    code = code_samples(base_url + "/", MODEL)["anthropic-python"]
    assert _run([sys.executable, "-c", code]) == "42\n"
    ((path, _, body),) = seen
    assert path == "/v1/messages" and body == ASKED


def test_the_anthropic_curl_sample_runs_as_written(gateway: Recorded) -> None:
    base_url, seen = gateway
    code = code_samples(base_url, MODEL)["anthropic-curl"]
    answer = json.loads(_run(["bash", "-c", f"{code} -sS --fail-with-body"]))
    assert answer["content"] == [{"type": "text", "text": "42"}]
    ((path, headers, body),) = seen
    assert path == "/v1/messages" and body == ASKED
    assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"


RESPONSES_ASKED = {"model": MODEL, "input": "What is the meaning of life?"}


def test_the_responses_python_sample_runs_as_written(gateway: Recorded) -> None:
    base_url, seen = gateway
    code = code_samples(base_url + "/", MODEL)["responses-python"]
    assert _run([sys.executable, "-c", code]) == "42\n"
    ((path, headers, body),) = seen
    assert path == "/v1/responses" and body == RESPONSES_ASKED
    assert headers["authorization"] == f"Bearer {KEY}"


def test_the_responses_curl_sample_runs_as_written(gateway: Recorded) -> None:
    base_url, seen = gateway
    code = code_samples(base_url, MODEL)["responses-curl"]
    answer = json.loads(_run(["bash", "-c", f"{code} -sS --fail-with-body"]))
    assert answer["output"][0]["content"][0]["text"] == "42"
    ((path, headers, body),) = seen
    assert path == "/v1/responses" and body == RESPONSES_ASKED
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["content-type"] == "application/json"


EMBEDDINGS_ASKED = {
    "model": EMBEDDING_MODEL,
    "input": "The quick brown fox jumps over the lazy dog",
}


def test_the_embeddings_python_sample_runs_as_written(gateway: Recorded) -> None:
    base_url, seen = gateway
    code = code_samples(base_url + "/", EMBEDDING_MODEL, embedding=True)["python"]
    assert _run([sys.executable, "-c", code]) == "[0.25, -0.5, 0.125]\n"
    ((path, headers, body),) = seen
    assert path == "/v1/embeddings"
    assert {k: body[k] for k in EMBEDDINGS_ASKED} == EMBEDDINGS_ASKED
    assert headers["authorization"] == f"Bearer {KEY}"


def test_the_embeddings_curl_sample_runs_as_written(gateway: Recorded) -> None:
    base_url, seen = gateway
    code = code_samples(base_url, EMBEDDING_MODEL, embedding=True)["curl"]
    answer = json.loads(_run(["bash", "-c", f"{code} -sS --fail-with-body"]))
    assert answer["data"][0]["embedding"] == [0.25, -0.5, 0.125]
    ((path, headers, body),) = seen
    assert path == "/v1/embeddings" and body == EMBEDDINGS_ASKED
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["content-type"] == "application/json"
