"""Swagger UI in a real headless Chromium: Authorize signs in, get_my_posts is called and its answer shown.

Runs against a real gunicorn, so the static files and the Content-Security-Policy are the shipped
ones, and records every request the page makes: none may leave the machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import StartServer, add_post, sign_up
from tests.support.api import PASSWORD
from tests.support.gunicorn import LiveServer

pytestmark = pytest.mark.e2e

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
UI_TIMEOUT_MS = 30_000  # generous: a loaded machine renders slowly; only a broken page reaches it


def _chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def chromium_path() -> str:
    """The Debian chromium binary; CI must have it, a developer machine may skip."""
    path = _chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run must install it")
        pytest.skip("chromium is not installed (apt-get install chromium); browser test skipped")
    return path


@pytest.fixture
def docs_server(start_server: StartServer, tmp_path: Path) -> LiveServer:
    """gunicorn on a SQLite file: the docs pages do not depend on the database backend."""
    return start_server(f"sqlite:///{tmp_path / 'docs.db'}")


@pytest.fixture
def browser_page(chromium_path: str) -> Iterator[object]:
    """A fresh page in headless Chromium (no browser download: Debian's binary)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 1600})
        finally:
            browser.close()


def test_swagger_ui_signs_in_and_shows_my_posts(docs_server: LiveServer, browser_page: object, tmp_path: Path) -> None:
    from playwright.sync_api import Page, expect

    page = browser_page
    assert isinstance(page, Page)
    base = docs_server.base
    token = sign_up(base, "ada@example.com")["access_token"]
    post_id = add_post(base, token, "shown in the browser \N{GRINNING FACE}")

    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.set_default_timeout(UI_TIMEOUT_MS)

    page.goto(base + "/docs")
    page.locator("button.authorize").first.click()
    page.locator("input#oauth_username").fill("ada@example.com")
    page.locator("input#oauth_password").fill(PASSWORD)
    page.locator(".auth-btn-wrapper button.authorize").first.click()  # the OAuth2 password flow
    expect(page.locator(".auth-container").first).to_contain_text("Authorized", timeout=UI_TIMEOUT_MS)
    page.locator("button.close-modal").click()

    operation = page.locator(".opblock", has=page.locator('[data-path="/api/v1/posts/get_my_posts"]'))
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    live = operation.locator(".live-responses-table")
    expect(live.locator("tbody td.response-col_status").first).to_have_text("200", timeout=UI_TIMEOUT_MS)
    body = live.locator("tbody .response-col_description .microlight").first
    expect(body).to_contain_text(post_id, timeout=UI_TIMEOUT_MS)
    expect(body).to_contain_text("shown in the browser", timeout=UI_TIMEOUT_MS)

    screenshot = tmp_path / "swagger-ui-get_my_posts.png"
    operation.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000

    # Every request went to this server (data: and blob: URLs never leave the page).
    assert requested, "the page made no request at all"
    remote = [url for url in requested if not url.startswith((base + "/", "data:", "blob:"))]
    assert remote == [], remote
    assert any(url.endswith("/api/v1/auth/sign_in") for url in requested)
    assert any(url.endswith("/api/v1/posts/get_my_posts") for url in requested)
    assert problems == [], problems  # no CSP violation, no script error


def test_redoc_renders_without_reaching_the_internet(docs_server: LiveServer, browser_page: object) -> None:
    from playwright.sync_api import Page, expect

    page = browser_page
    assert isinstance(page, Page)
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.set_default_timeout(UI_TIMEOUT_MS)

    page.goto(docs_server.base + "/redoc")
    expect(page.locator("h1").first).to_contain_text("Posts API", timeout=UI_TIMEOUT_MS)
    expect(page.locator("h2", has_text="List my posts, newest first")).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")

    remote = [url for url in requested if not url.startswith((docs_server.base + "/", "data:", "blob:"))]
    assert remote == [], remote
    assert problems == [], problems  # in particular no CSP report for ReDoc's CDN logo
