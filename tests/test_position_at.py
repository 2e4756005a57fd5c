"""``position_at``: the last position whose event occurred at or before a moment.

``occurred_at`` does not follow positions (late events, imports), so the answer is exact
whichever way a store reads it; the SQLite store picks the cheaper way by where the moment falls
(the table backwards from the head for a recent moment, the index by time for an early one).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logs import run
from store_contract import T0, requested

from ledger import open_store
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


@pytest.mark.anyio
async def test_sqlite_reads_backwards_only_near_the_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A moment near the start is found through the index by time, one near the head by reading
    the table backwards, one past the last event without either (the speed of ``state
    --as-of`` at both ends of a large log)."""
    used: list[str] = []
    original = reads.position_at

    async def spy(fetch: Any, moment: Any) -> int:
        async def recording(sql: str, params: Any, position: int = 1) -> list[Any]:
            used.append(sql)
            return list(await fetch(sql, params, position))

        return await original(recording, moment)

    monkeypatch.setattr(reads, "position_at", spy)
    minutes = [m if m % 7 else m - 3 for m in range(100)]  # mostly in order, a few late
    async with open_store(tmp_path / "s.db") as store:
        for i, m in enumerate(minutes):
            await store.append(f"payment-P{i}", [requested(f"P{i}", minutes=m)])
        for probe, way in [(5, reads.BY_TIME), (95, reads.BACKWARDS), (200, None)]:
            used.clear()
            assert await store.position_at(T0 + timedelta(minutes=probe)) == _expected(
                minutes, probe
            )
            assert used[1:] == ([] if way is None else [way]), probe
