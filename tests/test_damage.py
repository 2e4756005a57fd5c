"""A damaged file is a finding, never half an answer: `verify` runs SQLite's integrity check
besides the chain walk and names what is damaged and the first position affected; reading
commands either refuse (exit 1) or answer exactly as the intact store does; a file whose
header is not a payledger store's is bad input (exit 2)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
from faults import cli, damage, write_source

from ledger import IntegrityError, IntegrityReport, LedgerError, NotALedgerError, open_store
from ledger.sqlite import add_verify_check
from ledger.states import StateRow
from projections import Projector
from projections.rows import NAME

_READERS = (
    ("stats", "--json"),
    ("explain", "--failed", "--json"),
    ("export",),
    ("audit", "--type", "PaymentDeclined", "--json"),
)


@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A store of 6,000 generated events (no projection tables) and what each reading
    command prints for it."""
    directory = tmp_path_factory.mktemp("intact")
    source = directory / "in.jsonl"
    write_source(source, 6_000, seed=3)
    db = directory / "ledger.db"
    code, _, err = cli("--db", str(db), "import", "--no-project", str(source))
    assert code == 0, err
    answers = {}
    for argv in _READERS:
        code, out, err = cli("--db", str(db), *argv)
        assert code == 0, err
        answers[" ".join(argv)] = out
    return db, answers


@pytest.mark.parametrize("how", ["leaf", "interior", "index", "truncate", "schema"])
def test_damage_is_a_finding_and_never_half_an_answer(
    intact: tuple[Path, dict[str, str]], tmp_path: Path, how: str
) -> None:
    """`verify` exits 1 saying the file is damaged and from which position; every reading
    command refuses (exit 1) or prints exactly the intact store's answer, never an answer
    over part of the log, and never "not a payledger store"."""
    db, answers = intact
    copy = tmp_path / "damaged.db"
    damage(db, copy, how)
    code, out, err = cli("--db", str(copy), "verify")
    assert code == 1, (out, err)
    said = out + err
    assert "damaged" in said, said
    assert re.search(r"position \d+", said), f"no position named: {said}"
    assert "not a payledger store" not in said
    for argv in _READERS:
        code, out, err = cli("--db", str(copy), *argv)
        assert code in (0, 1), (argv, code, err)
        if code == 0:
            assert out == answers[" ".join(argv)], f"{argv}: an answer from part of the log"
        else:
            assert "integrity check failed at position" in err, err


def test_verify_names_a_damaged_index_and_its_first_position(
    intact: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """Damage to an index (the events read whole through the table) is still a finding:
    `verify --json` names the index and the first position it misses."""
    db, _ = intact
    copy = tmp_path / "damaged.db"
    damage(db, copy, "index")
    code, out, _ = cli("--db", str(copy), "verify", "--json")
    assert code == 1
    assert '"damaged":"index sqlite_autoindex_events_1' in out, out
    assert re.search(r'"first_bad_position":\d+', out), out


def test_read_all_yields_exactly_its_positions_or_raises(
    intact: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """On a store with a page of events zeroed, ``read_all`` yields positions 1, 2, 3, ...
    with none skipped, then raises an IntegrityError (DamagedStoreError) at the first it
    cannot read."""
    db, _ = intact
    copy = tmp_path / "damaged.db"
    damage(db, copy, "leaf")
    seen: list[int] = []

    async def go() -> None:
        async with open_store(copy, readonly=True) as store:

            async def read() -> None:
                async for record in store.read_all(page_size=500):
                    seen.append(record.position)

            with pytest.raises(IntegrityError) as info:
                await read()
            assert info.value.position == len(seen) + 1

    anyio.run(go, backend="asyncio")
    assert seen == list(range(1, len(seen) + 1))
    assert 0 < len(seen) < 6_000


def test_a_file_that_is_not_a_store_is_bad_input(
    intact: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """A file whose first 100 bytes are not a payledger store's header is not a store at all:
    exit 2 "not a payledger store", not a finding."""
    db, _ = intact
    copy = tmp_path / "other.db"
    damage(db, copy, "header")
    code, _, err = cli("--db", str(copy), "verify")
    assert code == 2
    assert "not a payledger store" in err

    async def go() -> None:
        async with open_store(copy, readonly=True):
            pass

    with pytest.raises(NotALedgerError):
        anyio.run(go, backend="asyncio")


def test_verify_runs_registered_checks_once_the_log_passes(
    intact: tuple[Path, dict[str, str]],
) -> None:
    """The hook for later checks (the projection tables against a fold of the log): a check
    registered with ``add_verify_check`` runs after the chain walk and the integrity check, and
    its finding is verify's."""
    db, _ = intact
    seen: list[int] = []

    async def check(fetch: Any) -> IntegrityReport | None:
        ((head,),) = await fetch("SELECT position FROM ledger_head", ())
        seen.append(head)
        return IntegrityReport(
            ok=False,
            checked=head,
            head_position=head,
            head_hash="",
            first_bad_position=7,
            reason="a projection disagrees with the log",
        )

    async def go() -> IntegrityReport:
        async with open_store(db, readonly=True) as store:
            return await store.verify()

    remove = add_verify_check(check)
    try:
        report = anyio.run(go, backend="asyncio")
    finally:
        remove()
    assert seen == [6_000]
    assert (report.ok, report.first_bad_position) == (False, 7)
    assert anyio.run(go, backend="asyncio").ok


@pytest.mark.parametrize("how", ["leaf", "interior", "index", "truncate"])
@pytest.mark.parametrize("way", ["rebuild", "catch_up"])
def test_projections_of_a_damaged_store_are_whole_or_not_written(
    intact: tuple[Path, dict[str, str]], tmp_path: Path, how: str, way: str
) -> None:
    """A rebuild, or a catch-up from nothing, over a damaged file (its pages read as one JSON
    text each, the next one read while this one is folded) raises an IntegrityError and
    writes nothing, or writes exactly the rows of the intact store."""
    db, _ = intact
    good, copy = tmp_path / "good.db", tmp_path / "damaged.db"
    shutil.copyfile(db, good)
    damage(db, copy, how)

    async def project(path: Path) -> list[StateRow] | None:
        async with open_store(path) as store, Projector.open(store) as projector:
            try:
                await (projector.rebuild() if way == "rebuild" else projector.catch_up())
            except IntegrityError:
                assert (await store.states.checkpoint(NAME)).position == 0
                return None
            return [row async for page in store.states.scan(NAME) for row in page]

    want = anyio.run(project, good, backend="asyncio")
    try:
        got = anyio.run(project, copy, backend="asyncio")
    except LedgerError as e:  # the file refuses to open for writing at all
        said = str(e)
    else:
        assert got is None or got == want
        return
    assert "damaged" in said or "malformed" in said or "integrity" in said, said
