"""Browser tests: Debian's chromium driven by Playwright against a real `modelyard serve`.

Screenshots go to test-artifacts/ (gitignored). Every page a test opens must log no console
errors and throw no uncaught exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from tests.e2e.server import RunningGateway, start_gateway

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# A priced embedding model served upstream, beside the built-in free one (never called: its
# page and the lists are what the tests look at).
PAID_EMBEDDING = "openai/text-embedding-3-small"
CATALOG = f"""
[[models]]
id = "{PAID_EMBEDDING}"
name = "OpenAI: Text Embedding 3 Small"
type = "embedding"
dimensions = 1536
context_length = 8192
output_modalities = ["embeddings"]

[[models.endpoints]]
provider = "openrouter"
upstream_model = "{PAID_EMBEDDING}"
price = {{ prompt = 0.02, completion = 0.0 }}
"""


# Module scope: sync Playwright runs an event loop of its own while it is open, which would
# stop pytest-asyncio's tests (tests/unit, tests/e2e) collected after this folder.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium.")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("browser-data")
    catalog = home / "catalog.toml"
    catalog.write_text(CATALOG)
    running = start_gateway(home, extra_args=["--catalog", str(catalog)])
    yield running
    running.stop()


class ConsoleErrors:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.allowed: list[str] = []  # substrings of errors a test provokes on purpose

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(a in message.text for a in self.allowed):
            self.messages.append(f"console: {message.text} ({message.location})")

    def on_page_error(self, error: Error) -> None:
        self.messages.append(f"uncaught: {error}")


@pytest.fixture
def console_errors() -> ConsoleErrors:
    return ConsoleErrors()


@pytest.fixture
def page(
    browser: Browser, gateway: RunningGateway, console_errors: ConsoleErrors
) -> Iterator[Page]:
    context = browser.new_context(
        base_url=gateway.base_url, viewport={"width": 1280, "height": 900}
    )
    opened = context.new_page()
    errors = console_errors
    opened.on("console", errors.on_console)
    opened.on("pageerror", errors.on_page_error)
    yield opened
    context.close()
    assert errors.messages == []


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
