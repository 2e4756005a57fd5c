"""``position_at``: the last position whose event occurred at or before a moment.

``occurred_at`` does not follow positions (late events, imports), so the answer is exact
whichever way a store reads it; the SQLite store picks the cheaper way by where the moment falls
(the table backwards from the head for a recent moment, the index by time for an early one).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import pytest
from backends import Backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logs import run
from store_contract import T0, requested

from ledger._pg import sql as pg_sql
from ledger._sqlite import reads


def _expected(minutes: list[int], probe: int) -> int:
    return max((i + 1 for i, m in enumerate(minutes) if m <= probe), default=0)


@pytest.mark.parametrize(
    ("backend", "examples"),
    [("memory", 100), ("sqlite", 60), ("postgres", 25)],
    indirect=["backend"],
)
def test_the_last_event_at_or_before_the_moment(backend: Backend, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(st.integers(0, 60), max_size=30),
        st.lists(st.integers(-5, 65), min_size=1, max_size=12),
    )
    def check(minutes: list[int], probes: list[int]) -> None:
        async def body() -> None:
            async with backend.store(durability="normal") as store:
                for i, m in enumerate(minutes):
                    await store.append(f"payment-P{i}", [requested(f"P{i}", minutes=m)])
                for probe in probes:
                    got = await store.position_at(T0 + timedelta(minutes=probe))
                    assert got == _expected(minutes, probe), (minutes, probe)

        run(body)

    check()


_WAYS: Final = {
    "sqlite": (reads.BY_TIME, reads.BACKWARDS),
    "postgres": (pg_sql.BY_TIME, pg_sql.BACKWARDS),
}


@pytest.mark.parametrize("backend", list(_WAYS), indirect=True)
def test_reads_backwards_only_near_the_head(backend: Backend) -> None:
    """A moment near the start is found through the index by time, one near the head by reading
    backwards, one past the last event with neither (the speed of ``state --as-of`` at both ends
    of a large log)."""
    by_time, backwards = _WAYS[backend.kind]
    minutes = [m if m % 7 else m - 3 for m in range(100)]  # mostly in order, a few late

    async def body() -> None:
        async with backend.store(durability="normal") as store:
            for i, m in enumerate(minutes):
                await store.append(f"payment-P{i}", [requested(f"P{i}", minutes=m)])
            used: list[str] = []
            fetch = store._fetch  # type: ignore[attr-defined]

            async def recording(sql: str, *args: Any) -> Any:
                used.append(sql)
                return await fetch(sql, *args)

            store._fetch = recording  # type: ignore[attr-defined]
            for probe, way in [(5, by_time), (95, backwards), (200, None)]:
                used.clear()
                got = await store.position_at(T0 + timedelta(minutes=probe))
                assert got == _expected(minutes, probe)
                assert used[1:] == ([] if way is None else [way]), probe

    run(body)
