"""Every page loads cleanly; the model list filters; the app page sits behind the admin login."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from modelyard.gateway import BOOTSTRAP_MODEL
from tests.browser.conftest import PAID_EMBEDDING, ConsoleErrors, screenshot
from tests.e2e.server import RunningGateway

EMBEDDING_MODEL = "sentence-transformers/all-minilm-l6-v2"


def test_model_list_search_filters_client_side(page: Page) -> None:
    page.goto("/models")
    cards = page.locator(".model-card")
    # The two embedded chat models, the embedded embedding model, two Haiku and the
    # operator catalog's priced embedding model.
    expect(cards).to_have_count(6)
    screenshot(page, "models")
    embedding = page.locator(f'.model-card[href="/models/{EMBEDDING_MODEL}"]')
    expect(embedding).to_have_attribute("data-type", "embedding")
    expect(embedding.locator(".tag")).to_have_text("Embeddings")
    expect(embedding.locator(".facts")).to_contain_text("384 dimensions")
    expect(embedding.locator(".facts")).not_to_contain_text("output")
    paid = page.locator(f'.model-card[href="/models/{PAID_EMBEDDING}"] .facts')
    expect(paid).to_contain_text("1536 dimensions")
    expect(paid).to_contain_text("$0.02 input")
    chat = page.locator(f'.model-card[href="/models/{BOOTSTRAP_MODEL}"]')
    expect(chat).to_have_attribute("data-type", "chat")
    expect(chat.locator(".tag")).to_have_count(0)
    expect(chat.locator(".facts")).to_contain_text("output")
    page.fill("#model-search", "embedding")
    expect(page.locator(".model-card:visible")).to_have_count(2)
    page.fill("#model-search", "haiku")
    expect(page.locator(".model-card:visible")).to_have_count(2)
    page.fill("#model-search", "gemma 270m")
    expect(page.locator(".model-card:visible")).to_have_count(1)
    expect(page.locator(".model-card:visible .model-id")).to_have_text("google/gemma-3-270m")
    page.fill("#model-search", "no such model")
    expect(page.locator(".model-card:visible")).to_have_count(0)
    expect(page.locator("#no-match")).to_be_visible()


def test_fresh_model_page_reads_well_without_data(page: Page, gateway: RunningGateway) -> None:
    page.goto("/models/anthropic/claude-haiku-4.5")
    expect(page.locator("h1")).to_have_text("Anthropic: Claude Haiku 4.5")
    expect(page.locator("#output-price")).to_have_text("$5.00/M tokens")
    expect(page.locator(".tag")).to_have_text(["Tool Use", "Vision", "Caching"])
    expect(page.locator("#providers tbody tr")).to_have_count(4)
    expect(page.locator("#apps .empty")).to_be_visible()
    expect(page.locator("#parameters .empty")).to_be_visible()
    # The code samples carry this gateway's URL and the model id.
    expect(page.locator("#code-curl")).to_contain_text(f"{gateway.base_url}/v1/chat/completions")
    page.click(".tab[data-tab=python]")
    expect(page.locator("#code-python")).to_be_visible()
    expect(page.locator("#code-python")).to_contain_text('model="anthropic/claude-haiku-4.5"')
    page.click(".tab[data-tab=responses-python]")
    expect(page.locator("#code-python")).to_be_hidden()
    expect(page.locator("#code-responses-python")).to_contain_text("client.responses.create(")
    page.click(".tab[data-tab=responses-curl]")
    expect(page.locator("#code-responses-curl")).to_contain_text(f"{gateway.base_url}/v1/responses")
    # The Anthropic SDK appends /v1/messages itself: its base URL is the gateway's root.
    page.click(".tab[data-tab=anthropic-python]")
    expect(page.locator("#code-responses-curl")).to_be_hidden()
    expect(page.locator("#code-anthropic-python")).to_be_visible()
    expect(page.locator("#code-anthropic-python")).to_contain_text(
        f'Anthropic(base_url="{gateway.base_url}", api_key='
    )
    page.click(".tab[data-tab=anthropic-curl]")
    expect(page.locator("#code-anthropic-curl")).to_contain_text(f"{gateway.base_url}/v1/messages")
    screenshot(page, "model-empty")


def test_embedding_model_page_shows_input_price_dimensions_and_embeddings_samples(
    page: Page, gateway: RunningGateway
) -> None:
    page.goto(f"/models/{PAID_EMBEDDING}")
    expect(page.locator(".tag")).to_have_text(["Embeddings"])
    expect(page.locator("#dimensions")).to_have_text("1,536")
    expect(page.locator("#input-price")).to_have_text("$0.02/M input tokens")
    expect(page.locator("#modalities")).to_have_text("text → embeddings")
    expect(page.locator("#output-price")).to_have_count(0)
    expect(page.locator(".stats-grid")).not_to_contain_text("Max output")
    # No completion price, throughput or sampling parameters: it generates no tokens.
    expect(page.locator("#providers thead th")).to_have_text(
        ["Provider", "Max input", "Input", "Latency", "Uptime", "Region", "ZDR"]
    )
    expect(page.locator("#providers tbody td").nth(2)).to_have_text("$0.02")
    expect(page.locator('[data-stat="throughput"]')).to_have_count(0)
    expect(page.locator("#parameters")).to_have_count(0)
    expect(page.locator('a[href^="/chat"]', has_text="Chat with this model")).to_have_count(0)
    expect(page.locator("#embedding-note")).to_contain_text("/v1/embeddings")
    # The samples call /v1/embeddings with curl, the OpenAI Python SDK and the Node one.
    expect(page.locator(".tab")).to_have_text(["curl", "Python", "JavaScript"])
    expect(page.locator("#code-curl")).to_contain_text(f"{gateway.base_url}/v1/embeddings")
    expect(page.locator("#code-curl")).to_contain_text(f'"model": "{PAID_EMBEDDING}"')
    page.click(".tab[data-tab=python]")
    expect(page.locator("#code-curl")).to_be_hidden()
    expect(page.locator("#code-python")).to_contain_text("client.embeddings.create(")
    page.click(".tab[data-tab=javascript]")
    expect(page.locator("#code-javascript")).to_contain_text("client.embeddings.create({")
    for name in ("curl", "python", "javascript"):
        expect(page.locator(f"#code-{name}")).not_to_contain_text("messages")
    screenshot(page, "model-embedding")

    # The built-in one is free, and its maximum input is its 256 word pieces.
    page.goto(f"/models/{EMBEDDING_MODEL}")
    expect(page.locator("#input-price")).to_have_text("Free")
    expect(page.locator("#dimensions")).to_have_text("384")
    expect(page.locator("#max-input")).to_have_text("256 tokens")


def test_chat_model_page_keeps_its_chat_samples_and_chat_link(page: Page) -> None:
    page.goto(f"/models/{BOOTSTRAP_MODEL}")
    expect(page.locator(".tab")).to_have_count(9)
    expect(page.locator("#code-curl")).to_contain_text("/v1/chat/completions")
    expect(page.locator("#output-price")).to_have_text("Free")
    page.click("text=Chat with this model")
    expect(page.locator("#model-picks input:checked")).to_have_attribute("value", BOOTSTRAP_MODEL)


def test_unknown_model_is_a_404_page(page: Page, console_errors: ConsoleErrors) -> None:
    console_errors.allowed.append("status of 404")
    response = page.goto("/models/nobody/nothing")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")


def test_app_page_needs_the_admin_key_in_a_strict_cookie(
    page: Page, gateway: RunningGateway, console_errors: ConsoleErrors
) -> None:
    console_errors.allowed.append("status of 401")  # the wrong key, on purpose
    page.goto("/apps/default")
    expect(page).to_have_url(f"{gateway.base_url}/login?next=/apps/default")
    screenshot(page, "login")
    page.fill("#admin_key", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("not this gateway's admin key")
    page.fill("#admin_key", gateway.admin_key)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{gateway.base_url}/apps/default")
    expect(page.locator("h1")).to_have_text("default")
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "modelyard_admin"
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    expect(page.locator("code", has_text="INFERENCE")).to_be_visible()
    expect(page.locator("#app-requests")).to_have_text("0")
    screenshot(page, "app-fresh")
    page.goto("/apps")
    expect(page.locator("table a", has_text="default")).to_be_visible()
    page.click("text=Sign out")
    page.goto("/apps/default")
    expect(page).to_have_url(f"{gateway.base_url}/login?next=/apps/default")
