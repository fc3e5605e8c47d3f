"""The dashboard in Chromium against a real `jobgate serve`, on both stores: a job seen
live from submission to its end, its log growing, a download, cancelling (one job and
several), and ownership (bob's session gets a 404 for alice's job). Jobs wait on FIFO
gates the test opens, never on sleeps; every wait is Playwright's auto-waiting expect."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect

from api.conftest import Gate, Server
from conftest import JOBGATE


def _label() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def _row(page: Page, job_id: str) -> Locator:
    return page.locator(f"#job-{job_id}")


def test_a_submitted_job_appears_and_changes_state_live(
    server: Server, signed_in: Callable[..., Page], gates: Callable[[], Gate], shots: Path
) -> None:
    page = signed_in("alice")
    tag = _label()
    page.goto(f"/ui/jobs?label=run%3D{tag}")
    expect(page.get_by_text("No jobs match.")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    gate = gates()
    script = f"echo hello; {gate.wait}"
    job = server.submit("alice", script=script, name="live", labels={"run": tag})
    row = page.locator(f"#job-{job['id']}")
    expect(row.locator(".state")).to_have_text("RUNNING")  # appeared, without a reload
    page.screenshot(path=shots / "jobs-live.png", full_page=True)
    gate.open()
    expect(row.locator(".state")).to_have_text("COMPLETED")
    expect(row).to_contain_text("live")
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#counts")).to_contain_text("COMPLETED")


def test_the_job_page_follows_its_log_and_downloads_a_file(
    server: Server, signed_in: Callable[..., Page], gates: Callable[[], Gate], shots: Path
) -> None:
    first, second = gates(), gates()
    script = (
        f"echo line one; {first.wait}; echo line two; echo '@event=[checkpoint:half way]'; "
        f"{second.wait}; echo line three; echo result-42 > result.txt"
    )
    job = server.submit("alice", script=script, name="logger", labels={"run": _label()})
    page = signed_in("alice")
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/stream" in r.url else None)
    page.goto(f"/ui/jobs/{job['id']}")
    log = page.locator("#log-stdout")
    expect(log).to_contain_text("line one")
    first.open()
    expect(log).to_contain_text("line two")
    assert len(streams) == 1, streams  # one connection for summary, timeline and both logs
    expect(page.locator("#timeline")).to_contain_text("job.checkpoint")
    page.screenshot(path=shots / "job-live.png", full_page=True)
    second.open()
    expect(log).to_contain_text("line three")
    expect(page.locator("#job-state")).to_have_text("COMPLETED")
    page.reload()  # the file list is read when the page is
    with page.expect_download() as download:
        page.get_by_role("link", name="result.txt").click()
    assert Path(download.value.path()).read_text() == "result-42\n"
    assert download.value.suggested_filename == "result.txt"


def test_a_job_is_cancelled_from_its_page(
    server: Server, signed_in: Callable[..., Page], gates: Callable[[], Gate]
) -> None:
    gate = gates()
    job = server.submit("alice", script=f"echo waiting; {gate.wait}", labels={"run": _label()})
    page = signed_in("alice")
    page.goto(f"/ui/jobs/{job['id']}")
    expect(page.locator("#job-state")).to_have_text("RUNNING")
    page.get_by_role("button", name="Cancel this job").click()
    expect(page.get_by_role("status")).to_contain_text("Cancel requested")
    expect(page.locator("#job-state")).to_have_text("CANCELLED")
    assert server.wait("alice", job["id"])["state"] == "CANCELLED"


def test_several_jobs_are_cancelled_from_the_table(
    server: Server, signed_in: Callable[..., Page], gates: Callable[[], Gate]
) -> None:
    tag = _label()
    held = [gates() for _ in range(3)]
    jobs = [server.submit("alice", script=f"{g.wait}", labels={"run": tag})["id"] for g in held]
    page = signed_in("alice")
    page.goto(f"/ui/jobs?label=run%3D{tag}")
    for job_id in jobs:
        expect(_row(page, job_id).locator(".state")).to_have_text("RUNNING")
    for job_id in jobs[:2]:
        page.get_by_label(f"Select job {job_id}").check()
    page.get_by_role("button", name="Cancel selected jobs").click()
    expect(page.get_by_role("status")).to_contain_text("Cancel requested for 2 jobs")
    assert [server.wait("alice", j)["state"] for j in jobs[:2]] == ["CANCELLED"] * 2
    assert server.job("alice", jobs[2])["state"] == "RUNNING"  # the one not selected
    held[2].open()
    assert server.wait("alice", jobs[2])["state"] == "COMPLETED"


def test_bob_gets_a_404_for_alices_job_and_never_sees_it(
    server: Server, signed_in: Callable[..., Page]
) -> None:
    tag = _label()
    job = server.submit("alice", script="echo mine", labels={"run": tag})
    bob = signed_in("bob")
    response = bob.goto(f"/ui/jobs/{job['id']}")
    assert response is not None and response.status == 404
    expect(bob.get_by_role("heading", name="Not found")).to_be_visible()
    for path in ("files/stdout", "logs/stdout"):
        assert bob.request.get(f"/ui/jobs/{job['id']}/{path}").status == 404
    bob.goto(f"/ui/jobs?label=run%3D{tag}")
    expect(bob.get_by_text("No jobs match.")).to_be_visible()
    admin = signed_in("admin")
    admin.goto(f"/ui/jobs?label=run%3D{tag}")
    expect(admin.locator(f"#job-{job['id']}")).to_contain_text("alice")  # the owner column


def test_a_forged_or_missing_csrf_token_changes_nothing(
    server: Server, signed_in: Callable[..., Page], gates: Callable[[], Gate]
) -> None:
    gate = gates()
    job = server.submit("alice", script=gate.wait, labels={"run": _label()})
    page = signed_in("alice")
    for form in ({"csrf": "forged"}, {}):
        res = page.request.post(f"/ui/jobs/{job['id']}/cancel", form=form)
        assert res.status == 403 and "Nothing was changed" in res.text()
        res = page.request.post("/ui/jobs/cancel", form={**form, "ids": job["id"]})
        assert res.status == 403
    res = page.request.post("/ui/submit", form={"csrf": "forged", "script": "echo x"})
    assert res.status == 403
    assert server.job("alice", job["id"])["state"] in ("QUEUED", "STAGING_IN", "RUNNING")
    gate.open()
    assert server.wait("alice", job["id"])["state"] == "COMPLETED"


def test_a_bad_token_and_an_expired_session_are_told(server: Server, anonymous: Page) -> None:
    anonymous.goto("/ui/jobs")
    anonymous.get_by_label("Token").fill("jg_not-a-token")
    anonymous.get_by_role("button", name="Sign in").click()
    expect(anonymous.get_by_role("alert")).to_contain_text("not valid")
    assert not [c for c in anonymous.context.cookies() if c["name"] == "jobgate_session"]
    # A session the gateway does not know (expired, or from before a restart)
    anonymous.context.add_cookies(
        [{"name": "jobgate_session", "value": "gone", "url": server.base_url + "/ui/"}]
    )
    anonymous.goto("/ui/jobs")
    expect(anonymous.get_by_role("alert")).to_contain_text("session has expired")
    res = anonymous.request.post("/ui/jobs/cancel", form={"csrf": "x"})
    assert res.status == 401 and "Nothing was changed" in res.text()


def test_the_submit_form_gives_the_apis_messages_and_creates_nothing_on_error(
    server: Server, signed_in: Callable[..., Page]
) -> None:
    page = signed_in("bob")
    before = server.client("bob").get("/jobs", params={"count": "true"}).json()["total"]
    page.get_by_role("link", name="Submit").click()
    page.get_by_label("Name").fill("from-the-form")
    page.get_by_label("Script").fill("echo submitted")
    page.get_by_label("Time limit").fill("soon")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("alert")).to_contain_text("resources.walltime")
    expect(page.get_by_label("Script")).to_have_value("echo submitted")  # kept
    assert server.client("bob").get("/jobs", params={"count": "true"}).json()["total"] == before
    page.get_by_label("Time limit").fill("5m")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name="Job from-the-form")).to_be_visible()
    expect(page.locator("#job-state")).to_have_text("COMPLETED")
    expect(page.locator("#log-stdout")).to_contain_text("submitted")


def test_pages_read_without_javascript(server: Server, signed_in: Callable[..., Page]) -> None:
    job = server.submit("alice", script="echo plain text", name="plain", labels={"run": _label()})
    server.wait("alice", job["id"])
    page = signed_in("alice", javascript=False)
    page.goto("/ui/jobs")
    page.get_by_role("link", name=job["id"]).click()
    expect(page.locator("#log-stdout")).to_contain_text("plain text")
    expect(page.locator("#job-state")).to_have_text("COMPLETED")


def test_jobgate_ui_prints_a_link_that_signs_in_once(server: Server, browser: Browser) -> None:
    made = subprocess.run(
        [JOBGATE, "ui", "--user", "alice", "--url", server.base_url],
        env=server.env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    link = made.stdout.strip()
    assert link.startswith(f"{server.base_url}/ui/signin/link?code=jg_"), link
    for attempt in ("first", "again"):
        context = browser.new_context()
        page = context.new_page()
        page.goto(link)  # opening it changes nothing: the button does
        page.get_by_role("button", name="Sign in with this link").click()
        if attempt == "first":
            expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
            expect(page.get_by_role("navigation", name="Main")).to_contain_text("alice")
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        else:
            expect(page.get_by_role("alert")).to_contain_text("used already")
        context.close()
    tokens = server.client("admin").get("/tokens", params={"user": "alice"}).json()
    made_here = {t["label"]: t for t in tokens if t["label"].startswith("dashboard")}
    assert made_here["dashboard sign-in link"]["revoked_at"]  # used up
    assert made_here["dashboard session (from a sign-in link)"]["revoked_at"]  # signed out


BAD_REQUESTS = [
    ("/ui/jobs?state=BOGUS", 422),
    ("/ui/jobs?label=no-equals", 422),
    ("/ui/jobs?name=%00", 422),
    ("/ui/jobs?label=k%3D%00", 422),
    ("/ui/jobs?destination=%00", 422),
    ("/ui/jobs?before=not-an-id", 422),
    ("/ui/jobs/..%2F..%2Fetc", 404),
    ("/ui/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/files/..%2F..%2Fjobgate.db", 404),
    ("/ui/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/logs/passwd", 404),
    ("/ui/charts/data.json?minutes=0", 422),
]


def test_bad_input_is_a_readable_page_never_a_stack_trace(
    server: Server, signed_in: Callable[..., Page]
) -> None:
    page = signed_in("alice")
    for path, status in BAD_REQUESTS:
        res = page.request.get(path)
        assert res.status == status, (path, res.status, res.text()[:300])
        assert "text/html" in res.headers["content-type"], path
        assert "Traceback" not in res.text() and 'role="alert"' in res.text(), path
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    res = page.request.post("/ui/submit", form={"csrf": csrf or "", "script": "echo \x00"})
    assert res.status == 422 and "script" in res.text()
    assert not [line for line in server.log if "Traceback" in line]
