"""`jobgate token create --expires`: durations from now and times, parsed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobgate.cli.tokens import expiry
from jobgate.errors import SpecError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("45s", NOW + timedelta(seconds=45)),
        ("90m", NOW + timedelta(minutes=90)),
        ("12h", NOW + timedelta(hours=12)),
        ("30d", NOW + timedelta(days=30)),
        (" 2W ", NOW + timedelta(weeks=2)),
        ("2026-12-31", datetime(2026, 12, 31, tzinfo=UTC)),  # UTC unless it has a zone
        ("2026-12-31T00:00Z", datetime(2026, 12, 31, tzinfo=UTC)),
        ("2026-12-31T02:00+02:00", datetime(2026, 12, 31, tzinfo=UTC)),
    ],
)
def test_durations_and_times(value: str, expected: datetime) -> None:
    assert expiry(value, now=NOW) == expected


def test_no_value_is_no_expiry() -> None:
    assert expiry(None, now=NOW) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "neither a duration"),
        ("12 h", "neither a duration"),
        ("-1d", "neither a duration"),
        ("1y", "neither a duration"),
        ("999999999w", "too far away"),
        ("2026-06-01T12:00Z", "not in the future"),
        ("2026-06-01T13:00+02:00", "not in the future"),
    ],
)
def test_what_is_refused_names_the_flag(value: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        expiry(value, now=NOW)
    assert info.value.field == "expires" and message in info.value.message


def test_a_zone_is_kept() -> None:
    when = expiry("2026-12-31T00:00+05:00", now=NOW)
    assert when is not None and when.utcoffset() == timezone(timedelta(hours=5)).utcoffset(None)
