"""Loading, merging and validating the TOML catalog."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from modelyard.catalog import CatalogError, ProviderKindInfo, load_catalog
from modelyard.providers.local.options import LocalEndpointOptions, LocalProviderOptions
from modelyard.providers.openai import OpenAIProvider
from modelyard.providers.registry import ProviderRegistry, builtin_kinds


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ops.toml"
    path.write_text(text)
    return path


def test_builtin_catalog_has_the_embedded_model_and_the_haiku_models() -> None:
    catalog = load_catalog()
    gemma = catalog.find("google/gemma-3-270m")
    assert gemma is not None and gemma.endpoints[0].provider.kind == "local"
    for model_id in ("anthropic/claude-3.5-haiku", "anthropic/claude-haiku-4.5"):
        model = catalog.find(model_id)
        assert model is not None
        assert {ep.provider.id for ep in model.endpoints} == {
            "anthropic",
            "openrouter",
            "heroku",
            "vercel",
        }
        assert model.spec.rpm == 200 and model.spec.tpm == 800_000
    assert catalog.find("claude-3-5-haiku") is catalog.find("anthropic/claude-3.5-haiku")


def test_operator_file_adds_providers_and_models_and_overrides_by_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[providers]]
id = "acme"
kind = "openai"
base_url = "http://127.0.0.1:9901/v1"
zdr = true

[[models]]
id = "acme/small"
name = "Acme Small"
context_length = 1000

[[models.endpoints]]
provider = "acme"
upstream_model = "small-1"
price = { prompt = 1, completion = 2 }

[[models]]
id = "google/gemma-3-270m"
name = "Gemma, renamed"
[[models.endpoints]]
provider = "local"
upstream_model = "builtin:gemma-3-270m"
""",
    )
    catalog = load_catalog(path)
    small = catalog.find("acme/small")
    assert small is not None
    assert small.endpoints[0].context_length == 1000
    assert small.endpoints[0].provider.zdr is True
    assert "tools" in small.endpoints[0].supported_parameters
    gemma = catalog.find("google/gemma-3-270m")
    assert gemma is not None and gemma.spec.name == "Gemma, renamed"
    assert catalog.find("anthropic/claude-3.5-haiku") is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[models]\n", "not valid TOML"),
        (
            '[[providers]]\nid = "x"\nkind = "grpc"\n',
            "providers[0] (id 'x'): kind: 'grpc' is not a provider kind"
            " (known: anthropic, local, openai)",
        ),
        (
            '[[providers]]\nid = "x"\nkind = "openai"\nthreads = 2\n',
            "providers[0] (id 'x'): unknown field(s) threads"
            " (kind 'openai' takes no fields of its own)",
        ),
        ('[[providers]]\nid = "x"\nkind = "local"\nthreadz = 2\n', "unknown field `threadz`"),
        (
            '[[providers]]\nid = "x"\nkind = "local"\nkv_cache_mb = -1\n',
            "providers[0] (id 'x'): kv_cache_mb: Expected `int` >= 0 (kind 'local')",
        ),
        (
            '[[models]]\nid = "a/b"\nname = "n"\n[[models.endpoints]]\nprovider = "openrouter"\n'
            'upstream_model = "m"\nchat_format = "gemma"\n',
            "models[0] (id 'a/b'): endpoints[0]: unknown field(s) chat_format (kind 'openai'",
        ),
        ('[[providers]]\nid = "x"\nkind = "openai"\nbase_urll = "y"\n', "base_urll"),
        ('[[models]]\nid = "a/b"\nname = "n"\nendpoints = []\n', "models[0] (id 'a/b'): endpoints"),
        (
            '[[models]]\nid = "a/b"\nname = "n"\n[[models.endpoints]]\nprovider = "nope"\n'
            'upstream_model = "m"\n',
            "provider 'nope' is not defined",
        ),
        (
            '[[models]]\nid = "a/b"\nname = "n"\n[[models.endpoints]]\nprovider = "local"\n'
            'upstream_model = "m"\nprice = { prompt = -1 }\n',
            "endpoints[0].price.prompt",
        ),
        (
            '[[models]]\nid = "a/b"\nname = "n"\naliases = ["gemma-3-270m"]\n'
            '[[models.endpoints]]\nprovider = "local"\nupstream_model = "m"\n',
            "alias 'gemma-3-270m' is already used",
        ),
        ('[[models]]\nid = "no-slash"\nname = "n"\n', "models[0] (id 'no-slash'): id"),
        ("[widgets]\n", "unknown top-level table"),
    ],
)
def test_errors_name_file_entry_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_missing_catalog_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "absent.toml")


def test_kind_fields_are_written_on_the_entry_and_validated_by_the_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[providers]]
id = "small-box"
kind = "local"
threads = 2
kv_cache_mb = 0

[[models]]
id = "acme/tiny"
name = "Tiny"
[[models.endpoints]]
provider = "small-box"
upstream_model = "builtin:gemma-3-270m"
chat_format = "gemma"
""",
    )
    catalog = load_catalog(path)
    assert catalog.providers["small-box"].options == LocalProviderOptions(threads=2, kv_cache_mb=0)
    model = catalog.find("acme/tiny")
    assert model is not None
    (endpoint,) = model.endpoints
    assert endpoint.spec.options == LocalEndpointOptions(chat_format="gemma")
    # No memory for saved prompt states: the kind says it caches nothing implicitly.
    assert endpoint.implicit_caching is False
    builtin = catalog.find("google/gemma-3-270m")
    assert builtin is not None and builtin.endpoints[0].implicit_caching is True
    assert builtin.endpoints[0].provider.options == LocalProviderOptions()


class EchoOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    voice: str = "plain"


ECHO = ProviderKindInfo(
    kind="echo",
    default_parameters=frozenset({"max_tokens", "echo_depth"}),
    provider_options=EchoOptions,
    implicit_caching=lambda spec: True,
)
ECHO_CATALOG = """
[[providers]]
id = "echoes"
kind = "echo"
voice = "loud"

[[models]]
id = "acme/echo"
name = "Echo"
[[models.endpoints]]
provider = "echoes"
upstream_model = "e"
[[models.endpoints]]
provider = "openrouter"
upstream_model = "e"
supported_parameters = ["echo_depth"]
"""


def test_a_registered_kind_validates_with_its_own_fields_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, ECHO_CATALOG)
    registry = ProviderRegistry()
    # A plug-in kind whose adapter happens to speak Chat Completions.
    registry.register(ECHO, OpenAIProvider)
    catalog = load_catalog(path, kinds=registry.kinds_info())
    assert catalog.providers["echoes"].options == EchoOptions(voice="loud")
    model = catalog.find("acme/echo")
    assert model is not None
    echo, other = model.endpoints
    assert echo.supported_parameters == {"max_tokens", "echo_depth"}
    assert echo.implicit_caching is True
    assert other.supported_parameters == {"echo_depth"}
    # Unregistered, the same file names an unknown kind.
    with pytest.raises(CatalogError, match="'echo' is not a provider kind"):
        load_catalog(path, kinds=builtin_kinds())


def test_the_catalog_validates_local_entries_without_importing_llama_cpp() -> None:
    script = (
        "import sys\n"
        "from modelyard.catalog import load_catalog\n"
        "from modelyard.providers.registry import builtin_registry\n"
        "registry = builtin_registry(load_local=False)\n"
        "catalog = load_catalog(kinds=registry.kinds_info())\n"
        "assert catalog.providers['local'].options is not None\n"
        "assert 'local' not in registry.kinds()\n"
        "print('llama_cpp' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
