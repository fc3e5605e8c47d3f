from __future__ import annotations

from jobgate.ids import new_id


def test_ids_are_unique_sortable_ulids() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # made in order, sort in order, even within one millisecond
    assert all(len(i) == 26 and i.isalnum() and i.isupper() for i in ids)
