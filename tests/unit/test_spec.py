"""Parsing what people type, and refusing bad specs with the field named."""

from __future__ import annotations

import pytest

from jobgate import JobSpec, SpecError
from jobgate.units import format_walltime, parse_memory, parse_walltime


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90 * 60),  # a bare number is minutes, as sbatch reads it
        ("1:30", 90),  # MM:SS
        ("1:30:00", 5400),
        ("2-00:00:00", 2 * 86400),
        ("1-12", 86400 + 12 * 3600),
        ("1-00:30", 86400 + 1800),
        ("30s", 30),
        ("2h", 7200),
        ("1.5h", 5400),
        ("1d", 86400),
        (45, 45),  # numbers given in code are seconds
    ],
)
def test_walltime_parses(text: str | int, seconds: int) -> None:
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("text", ["abc", "1:2:3:4", "-5", "0", "", "1-x", True])
def test_walltime_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_walltime(text)


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("512M", 512),
        ("32G", 32768),
        ("1T", 1024 * 1024),
        ("100mb", 100),
        ("2gb", 2048),
        ("1.5G", 1536),
        ("2048K", 2),
        (300, 300),
        ("4GiB", 4096),
    ],
)
def test_memory_parses(text: str | int, mb: int) -> None:
    assert parse_memory(text) == mb


@pytest.mark.parametrize("text", ["lots", "12X", "-1G", "0"])
def test_memory_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_memory(text)


def test_format_walltime_is_always_hh_mm_ss() -> None:
    assert format_walltime(3600) == "01:00:00"
    assert format_walltime(59) == "00:00:59"
    assert format_walltime(3 * 86400 + 61) == "72:01:01"


def test_aliases_become_fields_with_units() -> None:
    spec = JobSpec.parse(
        {
            "script": "true",
            "resources": {"walltime": "1:00:00", "mem": "2G", "queue": "debug", "cpus": 4},
        }
    )
    r = spec.resources
    assert (r.walltime_s, r.memory_mb, r.partition, r.cpus_per_task) == (3600, 2048, "debug", 4)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"script": "true", "resources": {"walltime": "abc"}}, "resources.walltime"),
        ({"script": "true", "resources": {"cpus_per_task": -1}}, "resources.cpus_per_task"),
        ({"script": "true", "resources": {"memory": "lots"}}, "resources.memory"),
        (
            {"script": "true", "resources": {"partition": "debug\n#SBATCH --x"}},
            "resources.partition",
        ),
        ({"script": "true", "resources": {"account": "a;rm -rf /"}}, "resources.account"),
        ({"script": "true", "resources": {"array": "0-9%x"}}, "resources.array"),
        ({"script": "true", "resources": {"directives": ["--x\n--y"]}}, "resources.directives"),
        ({"script": "true", "environment": {"1BAD": "x"}}, "environment"),
        ({"script": "true", "output_files": ["../escape"]}, "output_files.0"),
        ({"script": "true", "output_files": ["ok", "/abs/path"]}, "output_files.1"),
        (
            {"script": "true", "input_files": [{"source": "/a", "target": "../b"}]},
            "input_files.0.target",
        ),
        ({"script": "true", "shebang": "bash"}, "shebang"),
        ({"script": "true", "callback_url": "ftp://x"}, "callback_url"),
        ({"script": "true", "unknown_field": 1}, "unknown_field"),
        ({}, "spec"),
        ({"script": "true", "executable": "/bin/true"}, "spec"),
    ],
)
def test_bad_specs_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        JobSpec.parse(data)
    assert info.value.field == field, info.value


def test_array_specs_accepted() -> None:
    for text in ("0-99%10", "1,3,5", "0-15:4", "7"):
        assert JobSpec.parse({"script": "x", "resources": {"array": text}}).resources.array == text


def test_spec_round_trips_through_json() -> None:
    spec = JobSpec.parse(
        {
            "executable": "/bin/echo",
            "arguments": ["a b", "$HOME"],
            "environment": {"X": "1"},
            "labels": {"team": "bio"},
            "resources": {"time": "10m", "exclusive": True},
        }
    )
    assert JobSpec.model_validate_json(spec.model_dump_json()) == spec
