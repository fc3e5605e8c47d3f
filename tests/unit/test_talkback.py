"""What a job says of itself, parsed (engine/talkback.py): the line formats, namespacing,
JSON lines, partial lines across reads, and the cap per job."""

from __future__ import annotations

from jobgate.engine.talkback import MAX_EVENTS, Listener, parse_events_line, parse_stdout_line


def test_the_three_line_forms_and_others_ignored() -> None:
    assert parse_stdout_line("@event=[JOB_INITIALIZED:ready]") == ("JOB_INITIALIZED", "ready", {})
    assert parse_stdout_line("@log=[half way: 50%]") == ("log", "half way: 50%", {})
    assert parse_stdout_line("@var=[score:42]") == (
        "var",
        "score=42",
        {"name": "score", "value": 42},
    )
    assert parse_stdout_line("@var=[name:Ada]")[2]["value"] == "Ada"  # type: ignore[index]
    for line in ("hello", "@event=[no colon]", "@event=[bad type!:x]", " @log=[x]", "@var=[:1]"):
        assert parse_stdout_line(line) is None, line


def test_json_lines_of_the_events_file() -> None:
    assert parse_events_line('{"type": "STEP", "message": "1 of 2", "data": {"n": 1}}') == (
        "STEP",
        "1 of 2",
        {"n": 1},
    )
    assert parse_events_line('{"type": "STEP", "data": [1]}') == ("STEP", "", {})
    for line in ("not json", "[1]", '{"message": "no type"}', '{"type": "a b"}'):
        assert parse_events_line(line) is None, line


def test_a_job_cannot_pass_for_a_state_change_and_lines_may_come_in_pieces() -> None:
    heard = Listener()
    first = heard.hear("j", b"x\n@event=[COMPLETED:fake]\n@log=[par", b"")
    assert [(t, m) for _, t, m, _ in first] == [("job.COMPLETED", "fake")]
    second = heard.hear("j", b"tial]\n", b'{"type": "STEP"}\n')
    assert [(t, m) for _, t, m, _ in second] == [("job.log", "partial"), ("job.STEP", "")]
    assert heard.offsets("j") == (len(b"x\n@event=[COMPLETED:fake]\n@log=[partial]\n"), 17)
    assert second[-1][3]["events_at"] == 17  # where to resume after a restart


def test_at_most_max_events_per_job_then_one_note() -> None:
    heard = Listener()
    notes = heard.hear("j", b"@log=[x]\n" * (MAX_EVENTS + 50), b"")
    assert len(notes) == MAX_EVENTS + 1 and notes[-1][1] == "job.truncated"
    assert heard.hear("j", b"@log=[more]\n", b"") == []


def test_resume_starts_where_the_last_note_said() -> None:
    heard = Listener()
    heard.resume("j", {"stdout_at": 120, "events_at": 7})
    assert heard.known("j") and heard.offsets("j") == (120, 7)
