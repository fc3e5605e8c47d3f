from __future__ import annotations

import random

from jobgate.ids import encode, new_id


def test_ids_are_unique_sortable_ulids() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # made in order, sort in order, even within one millisecond
    assert all(len(i) == 26 and i.isalnum() and i.isupper() for i in ids)


def test_encoding_matches_the_ulid_definition() -> None:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's, most significant digit first
    values = [0, 1, 31, 32, 2**128 - 1, *(random.getrandbits(128) for _ in range(2000))]
    for value in values:
        expected = "".join(alphabet[(value >> shift) & 31] for shift in range(125, -1, -5))
        assert encode(value) == expected
