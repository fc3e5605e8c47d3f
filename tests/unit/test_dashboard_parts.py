"""The dashboard's pure parts: sessions and their expiry, the CSRF check, squeue-style
durations, the charts' series, the submit form's spec and the jobs page's filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobgate.errors import SpecError
from jobgate.spec import JobRecord, JobSpec
from jobgate.states import JobState
from jobgate.ui import format as fmt
from jobgate.ui.jobs import Filters
from jobgate.ui.pages import Viewer
from jobgate.ui.sessions import IDLE_S, MAX_AGE_S, MAX_SESSIONS, Sessions, csrf_ok
from jobgate.ui.submit import spec_of
from jobgate.users import User


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_is_random_and_its_token_never_its_id() -> None:
    sessions = Sessions()
    a, b = sessions.start("jg_secret"), sessions.start("jg_secret")
    assert a.id != b.id and a.csrf != b.csrf
    assert "jg_secret" not in a.id and len(a.id) >= 40
    assert sessions.get(a.id) is a and sessions.get("made-up") is None and sessions.get("") is None


def test_sessions_expire_when_idle_and_at_their_age_whatever_the_clicks() -> None:
    clock = Clock()
    sessions = Sessions(clock)
    idle = sessions.start("t")
    clock.now += IDLE_S + 1
    assert sessions.get(idle.id) is None
    busy = sessions.start("t")
    for _ in range(int(MAX_AGE_S // (IDLE_S / 2))):
        clock.now += IDLE_S / 2
        sessions.get(busy.id)
    clock.now += IDLE_S / 2
    assert sessions.get(busy.id) is None


def test_ending_a_session_and_the_cap_on_how_many_are_kept() -> None:
    sessions = Sessions()
    first = sessions.start("t")
    sessions.end(first.id)
    assert sessions.get(first.id) is None
    oldest = sessions.start("t")
    for _ in range(MAX_SESSIONS):
        sessions.start("t")
    assert sessions.get(oldest.id) is None  # the oldest went first


def test_csrf_needs_this_sessions_token() -> None:
    sessions = Sessions()
    mine, other = sessions.start("t"), sessions.start("t")
    assert csrf_ok(mine, mine.csrf)
    assert not csrf_ok(mine, other.csrf)
    assert not csrf_ok(mine, None) and not csrf_ok(mine, "")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, ""), (0, "0:00"), (65, "1:05"), (3600, "1:00:00"), (90061, "1-01:01:01"), (-3, "0:00")],
)
def test_durations_read_as_squeue_writes_them(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def _job(started: datetime | None, finished: datetime | None) -> JobRecord:
    made = datetime(2026, 1, 1, tzinfo=UTC)
    return JobRecord(
        id="01ARZ3NDEKTSV4RRFFQ69G5FAV", name=None, owner="a", destination="local",
        state=JobState.RUNNING, spec=JobSpec(script="true"), created_at=made,
        started_at=started, finished_at=finished,
    )  # fmt: skip


def test_elapsed_runs_until_the_end_or_now() -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    now = start + timedelta(minutes=5)
    assert fmt.elapsed(_job(None, None), now) == ""
    assert fmt.elapsed(_job(start, None), now) == "5:00"
    assert fmt.elapsed(_job(start, start + timedelta(seconds=42)), now) == "0:42"
    assert fmt.memory(2048) == "2G" and fmt.memory(1500) == "1500M" and fmt.memory(None) == ""


def test_series_counts_each_minute_and_states_at_its_end() -> None:
    now = 6_000.0  # minute 100 begins; the window is minutes 97-100
    rows = [
        ("COMPLETED", 5_830.0, 5_850.0, 5_900.0),  # submitted in 97, ran 97-98, done in 98
        ("RUNNING", 5_950.0, 5_960.0, None),  # submitted and started in 99
        ("QUEUED", 6_010.0, None, None),  # submitted in 100
        ("CANCELLED", 100.0, None, None),  # before the window, final with no end time
    ]
    s = fmt.series(rows, now, 4)
    assert s["x"] == [5_820, 5_880, 5_940, 6_000]
    assert s["submitted"] == [1, 0, 1, 1]
    assert s["finished"] == [0, 1, 0, 0]
    assert s["running"] == [1, 0, 1, 1]
    assert s["waiting"] == [0, 0, 0, 1]
    assert s["done"] == [1, 2, 2, 2]


def test_the_submit_form_leaves_blank_fields_to_the_destination() -> None:
    blank = dict.fromkeys(("name", "destination", "walltime", "memory", "cpus"), "")
    assert spec_of({**blank, "script": "echo"}) == {"script": "echo"}
    full = {**blank, "script": "x", "name": "n", "walltime": "1h", "memory": "2G", "cpus": "4"}
    spec = spec_of(full)
    assert spec["resources"] == {"walltime": "1h", "memory": "2G", "cpus_per_task": "4"}
    assert JobSpec.parse(spec).resources.walltime_s == 3600


def test_filters_keep_users_to_their_own_jobs_and_round_trip_as_a_query() -> None:
    alice = Viewer(Sessions().start("t"), User("alice", False, "s"))
    admin = Viewer(Sessions().start("t"), User("root", True, "s"))
    f = Filters(state=["running"], label="project=p1", owner="bob")
    assert f.service(alice)["owner"] == "alice"  # an owner filter is for admins only
    assert f.service(admin)["owner"] == "bob"
    assert f.service(alice)["label"] == {"project": "p1"}
    assert f.service(alice)["state"] == [JobState.RUNNING]
    assert f.query(before="X") == "state=running&label=project%3Dp1&owner=bob&before=X"
    with pytest.raises(SpecError):
        Filters(label="no-equals").service(alice)
