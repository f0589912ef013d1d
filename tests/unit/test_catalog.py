"""Loading, merging and validating the TOML catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.catalog import CatalogError, load_catalog


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
        ('[[providers]]\nid = "x"\nkind = "grpc"\n', "providers[0] (id 'x'): kind"),
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
