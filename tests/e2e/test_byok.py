"""Bring your own key: an app's provider key is stored encrypted and used for its requests."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from aiohttp import web

from tests.e2e.server import RunningGateway, free_port, start_gateway

OPERATOR_KEY = "operator-key-123"
APP_KEY = "app-own-key-456"
SECRET = "a-long-enough-operator-secret-for-tests"


class FakeUpstream:
    """An OpenAI-compatible upstream that records which key each request carried."""

    def __init__(self) -> None:
        self.port = free_port()
        self.keys_seen: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _chat(self, request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.keys_seen.append(key)
        if key not in (OPERATOR_KEY, APP_KEY):
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        body = await request.json()
        return web.json_response(
            {
                "id": "up-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"served with {key[:3]}"},
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            }
        )

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningGateway, FakeUpstream]]:
    data = tmp_path_factory.mktemp("byok")
    with FakeUpstream() as upstream:
        catalog = data / "catalog.toml"
        catalog.write_text(f"""
[[providers]]
id = "acme"
kind = "openai"
base_url = "http://127.0.0.1:{upstream.port}/v1"
api_key_env = "ACME_API_KEY"

[[models]]
id = "acme/small"
name = "Acme Small"

[[models.endpoints]]
provider = "acme"
upstream_model = "small-1"
price = {{ prompt = 1.0, completion = 1.0 }}
""")
        running = start_gateway(
            data,
            extra_args=["--catalog", str(catalog)],
            env={"ACME_API_KEY": OPERATOR_KEY, "MODELYARD_SECRET_KEY": SECRET},
        )
        yield running, upstream
        running.stop()


def cli(gw: RunningGateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_URL": gw.base_url, "MODELYARD_ADMIN_KEY": gw.admin_key}
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def new_app_key(gw: RunningGateway, app: str) -> str:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    assert httpx.post(f"{gw.base_url}/admin/apps", json={"name": app}, headers=headers).is_success
    attached = httpx.post(
        f"{gw.base_url}/admin/apps/{app}/models",
        json={"model": "acme/small", "alias": "ACME"},
        headers=headers,
    )
    return str(attached.json()["config"]["ACME_KEY"])


def wait_for_row(gw: RunningGateway, gen_id: str, key: str) -> dict[str, object]:
    for _ in range(100):
        response = httpx.get(
            gw.api_url + "/generation",
            params={"id": gen_id},
            headers={"Authorization": f"Bearer {key}"},
        )
        if response.status_code == 200:
            return dict(response.json()["data"])
        time.sleep(0.05)
    raise AssertionError("generation row not found")


def test_app_key_is_used_encrypted_at_rest_and_marked_byok(
    setup: tuple[RunningGateway, FakeUpstream],
) -> None:
    gw, upstream = setup
    plain_app = new_app_key(gw, "plain")
    own_app = new_app_key(gw, "own")
    result = cli(gw, "providers:keys:set", "acme", "-a", "own", "--key", APP_KEY)
    assert result.returncode == 0, result.stderr
    assert cli(gw, "providers:keys:list", "-a", "own").stdout.split() == ["acme"]

    plain = openai.OpenAI(base_url=gw.api_url, api_key=plain_app, max_retries=0)
    own = openai.OpenAI(base_url=gw.api_url, api_key=own_app, max_retries=0)
    first = plain.chat.completions.create(
        model="acme/small", messages=[{"role": "user", "content": "hi"}]
    )
    second = own.chat.completions.create(
        model="acme/small", messages=[{"role": "user", "content": "hi"}]
    )
    assert upstream.keys_seen[-2:] == [OPERATOR_KEY, APP_KEY]
    assert wait_for_row(gw, first.id, plain_app)["is_byok"] is False
    assert wait_for_row(gw, second.id, own_app)["is_byok"] is True

    # Only ciphertext is stored.
    with sqlite3.connect(Path(gw.data_dir) / "modelyard.db") as db:
        stored = [row[0] for row in db.execute("select ciphertext from provider_keys")]
    assert stored and all(APP_KEY not in text for text in stored)

    assert cli(gw, "providers:keys:unset", "acme", "-a", "own").returncode == 0
    own.chat.completions.create(model="acme/small", messages=[{"role": "user", "content": "hi"}])
    assert upstream.keys_seen[-1] == OPERATOR_KEY


def test_provider_key_errors(setup: tuple[RunningGateway, FakeUpstream]) -> None:
    gw, _ = setup
    unknown = cli(gw, "providers:keys:set", "nobody", "-a", "default", "--key", "k")
    assert unknown.returncode == 1 and "No provider 'nobody'" in unknown.stderr
    missing = cli(gw, "providers:keys:unset", "acme", "-a", "default")
    assert missing.returncode == 1 and "no key of its own" in missing.stderr
