"""The pages fit their Content-Security-Policy: no page reports a violation, and the policy is
really enforced (an injected inline script does not run)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from modelyard.gateway import BOOTSTRAP_MODEL
from tests.browser.conftest import ConsoleErrors
from tests.e2e.server import RunningGateway

# Runs before each page's own scripts; collects what the browser refused under the policy.
COLLECT_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"}` +
    ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""
PAGES = [
    "/models",
    f"/models/{BOOTSTRAP_MODEL}",
    "/models/google/gemma-3-270m",
    "/models/sentence-transformers/all-minilm-l6-v2",
    "/models/anthropic/claude-haiku-4.5",
    "/chat",
    "/login?next=/apps",
    "/apps",
    "/apps/default",
]


def sign_in(page: Page, gateway: RunningGateway) -> None:
    page.goto("/login?next=/apps")
    page.fill("#admin_key", gateway.admin_key)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{gateway.base_url}/apps")


def test_every_page_loads_and_works_with_no_csp_violation(
    page: Page, gateway: RunningGateway
) -> None:
    page.add_init_script(COLLECT_VIOLATIONS)
    sign_in(page, gateway)
    for path in PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.cspViolations") == [], path
    # The pages' own scripts still do their work under the policy.
    page.goto("/models")
    page.fill("#model-search", "haiku")
    expect(page.locator(".model-card:visible")).to_have_count(2)
    page.goto(f"/models/{BOOTSTRAP_MODEL}")
    page.click(".tab[data-tab=python]")
    expect(page.locator("#code-python")).to_be_visible()
    expect(page.locator(".share-bar").first).to_be_visible()
    page.goto("/chat")
    page.fill("#api-key", "my-not-a-key")
    expect(page.locator(".chat-panel")).to_have_count(1)  # the script drew the column
    assert page.evaluate("window.cspViolations") == []
    # Signing out (a form with its CSRF token) works as a click.
    page.goto("/apps")
    page.click("text=Sign out")
    expect(page).to_have_url(f"{gateway.base_url}/models")
    assert page.evaluate("window.cspViolations") == []


def test_the_policy_is_enforced_an_injected_inline_script_does_not_run(
    page: Page, console_errors: ConsoleErrors
) -> None:
    console_errors.allowed.append("Content Security Policy")  # the refusal provoked here
    page.add_init_script(COLLECT_VIOLATIONS)
    page.goto("/chat")
    ran = page.evaluate(
        """() => {
          window.injected = false;
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
          const img = document.createElement("img");
          img.setAttribute("onerror", "window.injected = true");
          img.src = "data:,not-an-image";
          document.body.append(img);
          return new Promise((done) => setTimeout(() => done(window.injected), 300));
        }"""
    )
    assert ran is False
    violations: list[str] = page.evaluate("window.cspViolations")
    assert any(v.startswith("script-src") for v in violations), violations
