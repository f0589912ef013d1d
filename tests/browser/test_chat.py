"""The chat room streams answers side by side: the text grows before the stream ends."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from modelyard.gateway import BOOTSTRAP_MODEL
from tests.browser.conftest import PAID_EMBEDDING, ConsoleErrors, screenshot
from tests.e2e.server import RunningGateway

EMBEDDING_MODEL = "sentence-transformers/all-minilm-l6-v2"

# Records every length the answer had while it was still streaming.
WATCH = """
() => {
  window.lengths = [];
  new MutationObserver(() => {
    const answer = document.querySelector(".bubble.assistant");
    if (answer && answer.classList.contains("streaming") && answer.textContent) {
      window.lengths.push(answer.textContent.length);
    }
  }).observe(document.getElementById("chat-columns"),
             {subtree: true, childList: true, characterData: true, attributes: true});
}
"""


def test_answer_streams_in_with_tokens_cost_and_ttft(page: Page, gateway: RunningGateway) -> None:
    page.goto("/chat")
    screenshot(page, "chat-empty")
    page.fill("#api-key", gateway.app_key)
    page.fill("#max-tokens", "48")
    page.evaluate(WATCH)
    page.fill("#message", "Tell me a short story about a robot.")
    page.click("#send")
    meta = page.locator(".chat-panel .meta")
    expect(meta).to_contain_text("first token", timeout=60_000)
    expect(meta).to_contain_text(" out · $0.000000 · first token", timeout=60_000)
    lengths: list[int] = page.evaluate("window.lengths")
    assert len(set(lengths)) >= 2, lengths  # seen growing while still streaming
    final = page.locator(".bubble.assistant").inner_text()
    assert len(final) > min(lengths)
    # The key is remembered for the next visit.
    assert page.evaluate("localStorage.getItem('modelyard.appKey')") == gateway.app_key
    screenshot(page, "chat-answer")


def test_two_models_answer_side_by_side(
    page: Page, gateway: RunningGateway, console_errors: ConsoleErrors
) -> None:
    console_errors.allowed.append("status of 403")  # the model the key may not use
    page.goto("/chat")
    page.fill("#api-key", gateway.app_key)
    page.fill("#max-tokens", "16")
    page.check('#model-picks input[value="anthropic/claude-haiku-4.5"]')
    page.fill("#message", "Hi!")
    page.keyboard.press("Enter")
    panels = page.locator(".chat-panel")
    expect(panels).to_have_count(2)
    default = page.locator(f'.chat-panel[data-model="{BOOTSTRAP_MODEL}"] .meta')
    expect(default).to_contain_text("first token", timeout=60_000)
    # The app has only the default model attached: the other column shows the refusal.
    other = page.locator('.chat-panel[data-model="anthropic/claude-haiku-4.5"] .bubble.error')
    expect(other).to_be_visible()
    screenshot(page, "chat-two-models")


def test_the_picker_offers_chat_models_only_with_the_default_picked(page: Page) -> None:
    page.goto("/chat")
    picks = page.locator("#model-picks input")
    values = [picks.nth(i).get_attribute("value") for i in range(picks.count())]
    assert BOOTSTRAP_MODEL in values and "google/gemma-3-270m" in values
    assert EMBEDDING_MODEL not in values and PAID_EMBEDDING not in values
    expect(page.locator("#model-picks input:checked")).to_have_count(1)
    expect(page.locator("#model-picks input:checked")).to_have_attribute("value", BOOTSTRAP_MODEL)
    # A link that names an embedding model keeps the default picked rather than none.
    page.goto(f"/chat?model={EMBEDDING_MODEL}")
    expect(page.locator("#model-picks input:checked")).to_have_attribute("value", BOOTSTRAP_MODEL)
    page.goto("/chat?model=google/gemma-3-270m")
    expect(page.locator("#model-picks input:checked")).to_have_count(1)
    expect(page.locator("#model-picks input:checked")).to_have_attribute(
        "value", "google/gemma-3-270m"
    )
