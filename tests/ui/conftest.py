"""The dashboard in a real browser: Debian's Chromium (scripts/browser-up.sh), driven by
Playwright's sync API, against a real `jobgate serve` per module and store (SQLite and
PostgreSQL), with alice, bob and an admin signed in through the sign-in page.

Screenshots go to a temporary folder; with JOBGATE_SCREENSHOTS=docs/screenshots they
refresh the README's (the only place a test run writes outside a temporary folder, and
only when asked)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from api.conftest import Server, gates, running_server
from conftest import fresh_pg_database, need, pg_url, service_env

# Auto-waiting assertions wait this long at most: a safety net, never a pass condition.
expect.set_options(timeout=60_000)
CONFIG = """\
[destinations.local]
capacity = 8
"""
# As the machine's probe starts Chromium: its background calls are refused offline here.
ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'jobgate.db'}"
    return fresh_pg_database(pg_url())


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("serve"), database_url, CONFIG) as srv:
        yield srv


# Package-scoped, not session: while Playwright's sync API runs, its event loop is the
# thread's running loop, and the tests after these would fail in asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    chromium = service_env().get("JOBGATE_TEST_CHROMIUM", "")
    need(bool(chromium) and Path(chromium).exists(), "no Chromium (scripts/browser-up.sh)")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def signed_in(browser: Browser, server: Server) -> Iterator[Callable[..., Page]]:
    """signed_in("alice") -> a page of a new browser context, signed in as alice through
    the sign-in form (javascript=False: a browser without JavaScript)."""
    contexts: list[BrowserContext] = []

    def _open(user: str, javascript: bool = True) -> Page:
        context = browser.new_context(
            base_url=server.base_url, accept_downloads=True, java_script_enabled=javascript
        )
        contexts.append(context)
        page = context.new_page()
        page.goto("/ui/")
        page.get_by_label("Token").fill(server.tokens[user])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def anonymous(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base_url)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: a temporary folder unless JOBGATE_SCREENSHOTS names one."""
    chosen = os.environ.get("JOBGATE_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


__all__ = ["gates"]  # the API tests' FIFO gates, a fixture here too
