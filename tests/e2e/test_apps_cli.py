"""Apps, model resources and keys through the `modelyard` CLI against a running gateway."""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway, start_gateway

HI = [{"role": "user", "content": "Say hi"}]
EMBEDDING_MODEL = "sentence-transformers/all-minilm-l6-v2"
DIMENSIONS = 384


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path_factory.mktemp("apps"))
    yield running
    running.stop()


def cli(gw: RunningGateway, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELYARD_URL": gw.base_url, "MODELYARD_ADMIN_KEY": gw.admin_key}
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def sdk(gw: RunningGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.api_url, api_key=key, max_retries=0)


def attach(gw: RunningGateway, app: str, model: str, alias: str) -> dict[str, str]:
    lines = ok(cli(gw, "models:create", model, "-a", app, "--as", alias)).splitlines()
    assert len(lines) == 3
    return dict(line.split("=", 1) for line in lines)


def test_create_app_attach_model_call_it_and_read_usage(gw: RunningGateway) -> None:
    assert "Created app shop" in ok(cli(gw, "apps:create", "shop"))
    config = attach(gw, "shop", MODEL.split("/", 1)[1], "CHAT")  # by its alias
    assert set(config) == {"CHAT_URL", "CHAT_KEY", "CHAT_MODEL_ID"}
    assert config["CHAT_URL"] == gw.base_url
    assert config["CHAT_MODEL_ID"] == MODEL

    reply = sdk(gw, config["CHAT_KEY"]).chat.completions.create(
        model=config["CHAT_MODEL_ID"],
        messages=HI,
        max_tokens=4,  # type: ignore[arg-type]
    )
    assert reply.choices[0].message.content

    streamed = ok(
        cli(
            gw,
            "models:call",
            "CHAT",
            "-a",
            "shop",
            "-p",
            "Say hi",
            "--opts",
            '{"max_tokens": 6, "seed": 3}',
        )
    )
    assert streamed.strip()
    as_json = ok(
        cli(
            gw,
            "models:call",
            "CHAT",
            "-a",
            "shop",
            "-p",
            "Say hi",
            "--json",
            "--opts",
            '{"max_tokens": 3}',
        )
    )
    assert '"chat.completion"' in as_json

    config_lines = ok(cli(gw, "config", "-a", "shop")).splitlines()
    assert f"CHAT_MODEL_ID={MODEL}" in config_lines
    assert any(line.startswith("CHAT_URL=") for line in config_lines)
    info = ok(cli(gw, "models:info", "CHAT", "-a", "shop"))
    assert f"CHAT_MODEL_ID={MODEL}" in info

    # Rows are written in batches off the request path: wait for the writer's flush.
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    rows: list[dict[str, object]] = []
    for _ in range(100):
        rows = httpx.get(f"{gw.base_url}/admin/apps/shop/usage", headers=headers).json()["data"]
        if rows and rows[0]["requests"] == 3:
            break
        time.sleep(0.05)
    assert len(rows) == 1 and rows[0]["model"] == MODEL and rows[0]["requests"] == 3
    table = ok(cli(gw, "usage", "-a", "shop"))
    assert MODEL in table and str(rows[0]["tokens_prompt"]) in table


def test_output_file_and_resource_id_work_like_the_alias(
    gw: RunningGateway, tmp_path: Path
) -> None:
    ok(cli(gw, "apps:create", "writer"))
    attach(gw, "writer", MODEL, "INFERENCE")
    resources = httpx.get(
        f"{gw.base_url}/admin/apps/writer/models",
        headers={"Authorization": f"Bearer {gw.admin_key}"},
    ).json()["data"]
    target = tmp_path / "answer.txt"
    ok(
        cli(
            gw,
            "models:call",
            resources[0]["id"],
            "-a",
            "writer",
            "-p",
            "Hello",
            "--opts",
            '{"max_tokens": 5}',
            "-o",
            str(target),
        )
    )
    assert target.read_text().strip()


def test_an_embedding_resource_is_called_with_its_text_and_prints_the_vector(
    gw: RunningGateway, tmp_path: Path
) -> None:
    ok(cli(gw, "apps:create", "search"))
    config = attach(gw, "search", "all-minilm-l6-v2", "EMBEDDING")
    assert set(config) == {"EMBEDDING_URL", "EMBEDDING_KEY", "EMBEDDING_MODEL_ID"}
    assert config["EMBEDDING_URL"] == gw.base_url
    assert config["EMBEDDING_MODEL_ID"] == EMBEDDING_MODEL
    info = httpx.get(
        f"{gw.base_url}/admin/apps/search/models/EMBEDDING",
        headers={"Authorization": f"Bearer {gw.admin_key}"},
    ).json()["model"]
    assert info["type"] == "embedding" and info["dimensions"] == DIMENSIONS

    text = "A lighthouse keeper counts the ships"
    printed = ok(cli(gw, "models:call", "EMBEDDING", "-a", "search", "-p", text))
    assert printed.count("\n") == 1  # the vector on one line of JSON
    vector = json.loads(printed)
    assert len(vector) == DIMENSIONS and all(isinstance(x, float) for x in vector)
    assert math.isclose(math.hypot(*vector), 1.0, rel_tol=1e-4)
    # The same vector the app gets with its own key through the SDK.
    sdk_vector = (
        sdk(gw, config["EMBEDDING_KEY"])
        .embeddings.create(model=EMBEDDING_MODEL, input=text, encoding_format="float")
        .data[0]
        .embedding
    )
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(vector, sdk_vector, strict=True))

    whole = json.loads(
        ok(cli(gw, "models:call", "EMBEDDING", "-a", "search", "-p", text, "--json"))
    )
    assert whole["object"] == "list" and whole["model"] == EMBEDDING_MODEL
    assert whole["data"][0]["embedding"] == vector
    assert whole["usage"]["prompt_tokens"] > 0

    packed = ok(
        cli(
            gw,
            "models:call",
            "EMBEDDING",
            "-a",
            "search",
            "-p",
            text,
            "--opts",
            '{"encoding_format": "base64"}',
        )
    )
    assert len(base64.b64decode(json.loads(packed))) == 4 * DIMENSIONS  # float32s

    target = tmp_path / "vector.json"
    ok(cli(gw, "models:call", "EMBEDDING", "-a", "search", "-p", text, "-o", str(target)))
    assert json.loads(target.read_text()) == vector

    # The model cannot shorten its vectors: a 400 that names the parameter, on one line.
    short = cli(
        gw, "models:call", "EMBEDDING", "-a", "search", "-p", text, "--opts", '{"dimensions": 8}'
    )
    assert short.returncode == 1 and "Traceback" not in short.stderr
    assert "'dimensions'" in short.stderr and len(short.stderr.strip().splitlines()) == 1


def test_keys_are_scoped_revocable_and_destroyed_with_their_resource(gw: RunningGateway) -> None:
    ok(cli(gw, "apps:create", "scoped"))
    config = attach(gw, "scoped", MODEL, "INFERENCE")
    resource_key = config["INFERENCE_KEY"]

    created = ok(cli(gw, "keys:create", "-a", "scoped", "--limit", "5", "--limit-reset", "daily"))
    app_key = created.strip().splitlines()[-1]
    assert app_key.startswith("my-")
    assert sdk(gw, app_key).chat.completions.create(model=MODEL, messages=HI, max_tokens=1)  # type: ignore[arg-type]

    # A model the app has not attached: 403, with the SDK's class for it.
    with pytest.raises(openai.PermissionDeniedError) as denied:
        sdk(gw, app_key).chat.completions.create(
            model="anthropic/claude-3.5-haiku",
            messages=HI,  # type: ignore[arg-type]
        )
    assert denied.value.body["code"] == 403  # type: ignore[index]

    listing = ok(cli(gw, "keys:list", "-a", "scoped"))
    key_id = next(word for word in listing.split() if word.startswith("key_"))
    keys = httpx.get(
        f"{gw.base_url}/admin/apps/scoped/keys", headers={"Authorization": f"Bearer {gw.admin_key}"}
    ).json()["data"]
    limited = next(k for k in keys if k["limit"] == 5)
    assert limited["limit_reset"] == "daily"
    key_id = limited["id"]
    ok(cli(gw, "keys:revoke", key_id, "-a", "scoped"))
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        sdk(gw, app_key).chat.completions.create(model=MODEL, messages=HI, max_tokens=1)  # type: ignore[arg-type]

    ok(cli(gw, "models:destroy", "INFERENCE", "-a", "scoped"))
    with pytest.raises(openai.AuthenticationError):
        sdk(gw, resource_key).chat.completions.create(model=MODEL, messages=HI, max_tokens=1)  # type: ignore[arg-type]


def test_detach_frees_the_alias_and_stops_its_key(gw: RunningGateway) -> None:
    ok(cli(gw, "apps:create", "detacher"))
    first = attach(gw, "detacher", MODEL, "SMALL")
    ok(cli(gw, "models:detach", "SMALL", "-a", "detacher"))
    with pytest.raises(openai.AuthenticationError):
        sdk(gw, first["SMALL_KEY"]).chat.completions.create(model=MODEL, messages=HI, max_tokens=1)  # type: ignore[arg-type]
    second = attach(gw, "detacher", MODEL, "SMALL")
    assert second["SMALL_KEY"] != first["SMALL_KEY"]


def test_admin_key_is_not_an_inference_key(gw: RunningGateway) -> None:
    with pytest.raises(openai.AuthenticationError, match="not an inference key"):
        sdk(gw, gw.admin_key).chat.completions.create(model=MODEL, messages=HI, max_tokens=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["models:create", MODEL, "-a", "no-such-app"], "No app named 'no-such-app'"),
        (["models:create", "nope/nope", "-a", "default"], "does not exist"),
        (["models:create", MODEL, "-a", "default", "--as", "bad-alias"], "upper-case letters"),
        (["apps:create", "default"], "already exists"),
        (["apps:create", "Bad Name"], "lower-case letters"),
        (["models:call", "NOPE", "-a", "default", "-p", "x"], "no model resource 'NOPE'"),
        (["keys:revoke", "key_nope", "-a", "default"], "has no key"),
        (["keys:create", "-a", "default", "--limit-reset", "daily"], "needs a 'limit'"),
        (
            ["providers:keys:set", "anthropic", "-a", "default", "--key", "k"],
            "needs MODELYARD_SECRET_KEY",
        ),
        (
            ["models:call", "INFERENCE", "-a", "default", "-p", "x", "--opts", "{bad"],
            "not valid JSON",
        ),
    ],
)
def test_cli_errors_are_one_line_and_exit_1(
    gw: RunningGateway, args: list[str], expected: str
) -> None:
    result = cli(gw, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_duplicate_app_is_409_and_bad_alias_is_400_on_the_api(gw: RunningGateway) -> None:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    dup = httpx.post(f"{gw.base_url}/admin/apps", json={"name": "default"}, headers=headers)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == 409
    bad = httpx.post(
        f"{gw.base_url}/admin/apps/default/models",
        json={"model": MODEL, "alias": "lower"},
        headers=headers,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "alias"
    anon = httpx.get(f"{gw.base_url}/admin/apps", headers={"Authorization": "Bearer nope"})
    assert anon.status_code == 401
