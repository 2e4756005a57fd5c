"""Reads that must not scan the whole log: ``position_at`` (the last position whose event
occurred at or before a moment) and the reads by stream.

``occurred_at`` does not follow positions (late events, imports), so the answer is exact
whichever way a store reads it; the SQLite store picks the cheaper way by where the moment falls
(the table backwards from the head for a recent moment, the index by time for an early one).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import msgspec
import pytest
from backends import Backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logs import run
from store_contract import T0, requested, status

from ledger import memory
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


@pytest.mark.parametrize(
    ("backend", "examples"),
    [("memory", 100), ("sqlite", 40), ("postgres", 20)],
    indirect=["backend"],
)
def test_reads_by_stream_are_the_log_filtered(
    backend: Backend, examples: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``read_streams`` and ``query(stream=...)`` give exactly the events of the log's order
    that belong to the streams and positions asked (the memory store reads each stream's own
    list a page at a time: pages of 3 here, so reads cross pages)."""
    monkeypatch.setattr(memory, "_PAGE", 3)

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(st.integers(0, 5), min_size=1, max_size=25),
        st.sets(st.integers(0, 6), max_size=4),
        st.integers(0, 30),
        st.one_of(st.none(), st.integers(0, 30)),
    )
    def check(owners: list[int], asked: set[int], low: int, high: int | None) -> None:
        async def body() -> None:
            async with backend.store(durability="normal") as store:
                versions: dict[int, int] = {}
                for i, owner in enumerate(owners):
                    version = versions.get(owner, 0)
                    event = (
                        requested(f"P{owner}", minutes=i)
                        if version == 0
                        else status(f"c{owner}", minutes=i)
                    )
                    stream = f"payment-P{owner}" if version == 0 else f"channel-c{owner}"
                    await store.append(stream, [event])
                    versions[owner] = version + 1
                every = [r async for r in store.read_all()]
                names = {f"payment-P{n}" for n in asked} | {f"channel-c{n}" for n in asked}

                def inside(position: int) -> bool:
                    return position >= low and (high is None or position <= high)

                want = [r.position for r in every if r.stream in names and inside(r.position)]
                got = [
                    r.position
                    async for r in store.read_streams(names, from_position=low, to_position=high)
                ]
                assert got == want
                for name in sorted(names):
                    want_one = [
                        r.position for r in every if r.stream == name and inside(r.position)
                    ]
                    got_one = [
                        r.position
                        async for r in store.query(stream=name, from_position=low, to_position=high)
                    ]
                    assert got_one == want_one, name

        run(body)

    check()


@pytest.mark.parametrize(
    ("backend", "examples"),
    [("memory", 100), ("sqlite", 40), ("postgres", 20)],
    indirect=["backend"],
)
def test_payments_of_an_account_are_its_requests_in_order(backend: Backend, examples: int) -> None:
    """``payments_of`` (how an account's state finds its payments) names exactly the payments
    whose request names the account, in request order, up to the position asked."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(st.sampled_from(["A1", "A2", "A3"]), max_size=20),
        st.one_of(st.none(), st.integers(0, 22)),
    )
    def check(accounts: list[str], upto: int | None) -> None:
        async def body() -> None:
            async with backend.store(durability="normal") as store:
                for i, account in enumerate(accounts):
                    event = msgspec.structs.replace(
                        requested(f"P{i}", minutes=i), account_id=account
                    )
                    await store.append(f"payment-P{i}", [event])
                for account in ("A1", "A2", "A3", "A9"):
                    want = [
                        f"P{i}"
                        for i, a in enumerate(accounts)
                        if a == account and (upto is None or i + 1 <= upto)
                    ]
                    assert await store.payments_of(account, to_position=upto) == want, account

        run(body)

    check()
