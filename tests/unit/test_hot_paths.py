"""HotPaths: the inference front doors reach their handlers directly, everything else
Starlette, and what a handler does not foresee is still a 500 in its own API's error shape."""

from __future__ import annotations

from typing import Any

import orjson

from modelyard.app import HotPaths, _front_doors


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        if self.fail:
            raise RuntimeError("a bug in the handler")


def scope(path: str, method: str = "POST") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": []}


async def run(app: HotPaths, path: str, method: str = "POST") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope(path, method), receive, send)
    return sent


def hot_paths(chat: Recorder, messages: Recorder, rest: Recorder) -> HotPaths:
    return HotPaths(_front_doors(chat, messages, chat, chat), rest)  # type: ignore[arg-type]


async def test_only_inference_posts_take_the_direct_route() -> None:
    chat, messages, rest = Recorder(), Recorder(), Recorder()
    app = hot_paths(chat, messages, rest)
    for path in ("/v1/chat/completions", "/api/v1/chat/completions"):
        await run(app, path)
    for path in ("/v1/messages", "/api/v1/messages", "/v1/messages/count_tokens"):
        await run(app, path)
    await run(app, "/v1/chat/completions", method="GET")  # Starlette answers 405
    await run(app, "/v1/models")
    assert chat.paths == ["/v1/chat/completions", "/api/v1/chat/completions"]
    assert messages.paths == ["/v1/messages", "/api/v1/messages", "/v1/messages/count_tokens"]
    assert rest.paths == ["/v1/chat/completions", "/v1/models"]


async def test_an_unforeseen_error_on_messages_is_a_500_in_anthropics_shape() -> None:
    app = hot_paths(Recorder(), Recorder(fail=True), Recorder())
    start, body = await run(app, "/v1/messages")
    assert start["status"] == 500
    assert orjson.loads(body["body"]) == {
        "type": "error",
        "error": {"type": "api_error", "message": "Internal server error."},
    }


async def test_an_unforeseen_error_is_a_500_in_the_openai_shape() -> None:
    app = hot_paths(Recorder(fail=True), Recorder(), Recorder())
    start, body = await run(app, "/v1/chat/completions")
    assert start["status"] == 500
    error = orjson.loads(body["body"])["error"]
    assert error["code"] == 500 and error["message"] == "Internal server error."
    assert "a bug" not in body["body"].decode()  # no internals leak to the client
