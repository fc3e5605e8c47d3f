from __future__ import annotations

import random

from jobgate.ids import encode, is_id, new_id


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


def test_attempt_names_name_every_attempt_of_our_ids_and_nothing_else() -> None:
    from jobgate.engine.janitor import attempt_names

    job_id = new_id()
    assert attempt_names(job_id, f"/runs/{job_id}") == [job_id]
    assert attempt_names(job_id, None) == [job_id]
    assert attempt_names(job_id, f"/r/{job_id}~3") == [job_id, f"{job_id}~2", f"{job_id}~3"]
    assert attempt_names(job_id, f"/r/{job_id}~99999") == [job_id]  # not an attempt we make
    assert attempt_names("../../etc", "/r/x~2") == []
    assert attempt_names(job_id.lower(), None) == []
    assert is_id(job_id) and not is_id(job_id + "0") and not is_id(f"{job_id[:-1]}/")
