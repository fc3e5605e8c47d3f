"""Every page of the dashboard passes axe-core with no serious or critical violation, and
each is photographed (docs/screenshots with JOBGATE_SCREENSHOTS=docs/screenshots)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from api.conftest import Server

AXE = Axe()
SEVERE = {"serious", "critical"}


def severe(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = AXE.run(page).response["violations"]
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in found
        if v["impact"] in SEVERE
    ]


@pytest.fixture(scope="module")
def finished_job(server: Server) -> str:
    """A finished job of alice's, after two others (one failed) to fill the table."""
    others = [
        {"script": "echo partial; exit 3", "name": "fails"},
        {"script": "echo ok", "name": "limited", "resources": {"walltime": "10m", "memory": "1G"}},
    ]
    for spec in others:
        server.wait("alice", server.submit("alice", labels={"project": "demo"}, **spec)["id"])
    spec = {"script": "echo hello; echo '@event=[progress:done]'; echo out > data.csv"}
    job = server.submit("alice", name="example", labels={"project": "demo"}, **spec)
    assert server.wait("alice", job["id"])["state"] == "COMPLETED"
    return str(job["id"])


PAGES = {
    "jobs": ("/ui/jobs", "Jobs"),
    "submit": ("/ui/submit", "Submit a job"),
    "destinations": ("/ui/destinations", "Destinations"),
    "charts": ("/ui/charts", "Charts"),
    "not-found": ("/ui/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", "Not found"),
    "no-such-page": ("/ui/nowhere", "Not found"),
}


@pytest.mark.parametrize("name", PAGES)
def test_each_page_has_no_serious_accessibility_violation(
    signed_in: Callable[..., Page], finished_job: str, shots: Path, name: str
) -> None:
    path, heading = PAGES[name]
    page = signed_in("admin" if name == "destinations" else "alice")
    page.goto(path)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    if name == "charts":
        expect(page.locator("#chart-throughput canvas")).to_be_visible()
    assert severe(page) == []
    page.screenshot(path=shots / f"{name}.png", full_page=True)


def test_the_job_page_has_no_serious_accessibility_violation(
    signed_in: Callable[..., Page], finished_job: str, shots: Path
) -> None:
    page = signed_in("alice")
    page.goto(f"/ui/jobs/{finished_job}")
    expect(page.locator("#log-stdout")).to_contain_text("hello")
    assert severe(page) == []
    page.screenshot(path=shots / "job-finished.png", full_page=True)


def test_the_sign_in_page_and_its_error_have_no_serious_violation(
    anonymous: Page, shots: Path
) -> None:
    anonymous.goto("/ui/signin")
    assert severe(anonymous) == []
    anonymous.screenshot(path=shots / "signin.png")
    anonymous.get_by_label("Token").fill("wrong")
    anonymous.get_by_role("button", name="Sign in").click()
    expect(anonymous.get_by_role("alert")).to_be_visible()
    assert severe(anonymous) == []


def test_the_skip_link_is_the_first_stop_of_the_keyboard(
    signed_in: Callable[..., Page],
) -> None:
    page = signed_in("alice")
    page.goto("/ui/jobs")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    expect(page.locator("main")).to_be_focused()


def test_every_asset_a_page_loads_comes_from_the_gateway(
    signed_in: Callable[..., Page],
) -> None:
    """No CDN: each script, style sheet and link of the pages is the gateway's own."""
    page = signed_in("alice")
    for path in ("/ui/jobs", "/ui/charts"):
        page.goto(path)
        urls = page.eval_on_selector_all(
            "script[src], link[href]",
            "els => els.map(e => e.getAttribute('src') || e.getAttribute('href'))",
        )
        assert urls and not [u for u in urls if "//" in u], urls
        for url in urls:
            res = page.request.get(url)
            assert res.status == 200 and res.body(), url
