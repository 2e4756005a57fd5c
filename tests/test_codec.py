"""The JSON Lines codec: round trips for every event type, and its errors.

Strategies are built from each Struct's annotations through ``msgspec.inspect`` so that they
respect the catalogue's constraints (``st.from_type`` ignores msgspec ``Meta``): ids are
non-empty, amounts positive, limits non-negative, vocabularies closed, timestamps UTC.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from store_contract import T0, collect

from ledger import FormatError, ImportItem, Record, open_store, stream_of
from ledger.codec import decode_line, encode_record, read_lines
from ledger.events import CATALOGUE, AccountOpened, Event
from ledger.store import MAX_SUMMED_MINOR, SUMMED_TYPES

# --- strategies from the annotations -------------------------------------------------------

_TEXT = st.text(max_size=40)


def strategy_for(t: mi.Type) -> st.SearchStrategy[Any]:
    """Values of a field's msgspec type that satisfy its constraints."""
    if isinstance(t, mi.StrType):
        if t.pattern is not None:
            return st.from_regex(t.pattern, fullmatch=True)
        low = t.min_length or 0
        high = min(t.max_length if t.max_length is not None else 40, 40)
        plain = st.text(min_size=low, max_size=high)
        if t.max_length is not None and t.max_length <= 256:  # ids: sometimes at the limit
            return plain | st.text(min_size=t.max_length, max_size=t.max_length)
        return plain
    if isinstance(t, mi.IntType):
        low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -(2**63))
        high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 2**63 - 1)
        return st.integers(low, high)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.DateTimeType):
        return st.datetimes(
            min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
        )
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.UnionType):
        return st.one_of(*(strategy_for(member) for member in t.types))
    if isinstance(t, (mi.VarTupleType, mi.ListType)):
        return st.lists(strategy_for(t.item_type), max_size=4).map(tuple)
    if isinstance(t, mi.StructType):
        return st.builds(t.cls, **{f.name: strategy_for(f.type) for f in t.fields})
    raise NotImplementedError(f"no strategy for {t!r}")


def events_of(cls: type[Event]) -> st.SearchStrategy[Event]:
    """Valid events of one catalogue type."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return strategy_for(info)


ANY_EVENT: st.SearchStrategy[Event] = st.one_of(*(events_of(c) for c in CATALOGUE.values()))
TYPES = sorted(CATALOGUE)


def _record(event: Event, position: int = 1) -> Record:
    return Record(
        position=position,
        stream=stream_of(event),
        version=position,
        event=event,
        event_id="0190a7a8-8b4e-7c3d-9a1b-2c3d4e5f6a7b",
        recorded_at=T0,
        correlation_id="order-77",
    )


# --- round trips ---------------------------------------------------------------------------


def test_every_catalogue_field_has_a_strategy() -> None:
    for cls in CATALOGUE.values():
        assert events_of(cls) is not None


@pytest.mark.parametrize("type_name", TYPES)
@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_line_round_trip(type_name: str, data: st.DataObject) -> None:
    event = data.draw(events_of(CATALOGUE[type_name]))
    record = _record(event)
    line = encode_record(record)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    doc = json.loads(line)
    assert doc["type"] == type_name
    assert doc["stream"] == stream_of(event)
    assert "occurred_at" not in doc["data"]
    item = decode_line(line.rstrip(b"\n"), 7, "f.jsonl")
    assert item.event == event
    assert type(item.event) is type(event)
    assert (item.stream, item.event_id, item.correlation_id, item.causation_id) == (
        record.stream,
        record.event_id,
        "order-77",
        None,
    )
    assert item.recorded_at == T0
    assert (item.line, item.source) == (7, "f.jsonl")


@pytest.mark.parametrize("type_name", TYPES)
@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_store_export_line_round_trip(type_name: str, data: st.DataObject) -> None:
    """Struct -> store -> export line -> decode_line -> the same Struct."""
    event = data.draw(events_of(CATALOGUE[type_name]))

    async def go() -> tuple[Event, Event]:
        async with open_store(":memory:") as store:
            await store.append(stream_of(event), [event])
            (record,) = await collect(store.read_all())
        return record.event, decode_line(encode_record(record), 1).event

    stored, decoded = anyio.run(go, backend="asyncio")
    assert stored == event
    assert decoded == event


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(ANY_EVENT, min_size=1, max_size=12))
def test_export_import_between_backends(events: list[Event]) -> None:
    """A mixed log through SQLite, exported, imported into both backends: the same records and
    the same head hash."""
    summed = sum(getattr(e, "amount_minor", 0) for e in events if type(e).__name__ in SUMMED_TYPES)
    assume(summed <= MAX_SUMMED_MINOR)  # (a log the store refuses: tests/test_amounts.py)

    async def go(directory: Path) -> None:
        async with open_store(directory / "a.db") as source:
            for event in events:
                await source.append(stream_of(event), [event], causation_id="c")
            original = await collect(source.read_all())
            head = (await source.verify()).head_hash
        lines = [encode_record(r) for r in original]
        for target in (":memory:", str(directory / "b.db")):
            async with open_store(target) as store:
                result = await store.import_events(read_lines(lines, "export.jsonl"))
                assert result.appended == len(events)
                assert await collect(store.read_all()) == original
                report = await store.verify()
                assert report.ok
                assert report.head_hash == head

    with tempfile.TemporaryDirectory() as directory:
        anyio.run(go, Path(directory), backend="asyncio")


# --- errors --------------------------------------------------------------------------------

_GOOD: dict[str, Any] = {
    "stream": "payment-P1",
    "type": "ChannelDecided",
    "occurred_at": "2026-03-01T09:00:00Z",
    "data": {
        "payment_id": "P1",
        "attempt": 1,
        "channel": "bank_card",
        "candidates": [
            {"channel": "huabei", "eligible": False, "reason": "policy"},
            {"channel": "bank_card", "eligible": True, "reason": ""},
        ],
        "rule": "merchant policy",
    },
}


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(_GOOD))
    data = changes.pop("data", {})
    doc.update(changes)
    doc["data"].update(data)
    return doc


def _without(key: str, in_data: bool = False) -> dict[str, Any]:
    doc = _doc()
    (doc["data"] if in_data else doc).pop(key)
    return doc


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        (_doc(type="Nope"), "type", "unknown event type 'Nope'"),
        (_without("stream"), "stream", "missing"),
        (_without("type"), "type", "missing"),
        (_without("occurred_at"), "occurred_at", "missing"),
        (_without("data"), "data", "missing"),
        (_without("rule", in_data=True), "data.rule", "missing"),
        (_doc(data={"attempt": 0}), "data.attempt", ">= 1"),
        (_doc(data={"attempt": "1"}), "data.attempt", "int"),
        (_doc(data={"payment_id": ""}), "data.payment_id", "length"),
        (_doc(data={"payment_id": "p" * 257}), "data.payment_id", "length"),
        (_doc(data={"rule": "r" * 4097}), "data.rule", "length"),
        (
            _doc(data={"candidates": [{"channel": "x", "eligible": "yes", "reason": ""}]}),
            "data.candidates[0].eligible",
            "bool",
        ),
        (_doc(data={"candidates": "huabei"}), "data.candidates", "array"),
        (_doc(data={"extra": 1}), "data.extra", "no field 'extra'"),
        (_doc(data={"occurred_at": "2026-03-01T09:00:00Z"}), "data.occurred_at", "no field"),
        (_doc(data={"type": "ChannelDecided"}), "data.type", "no field"),
        (_doc(extra=1), None, "unknown key 'extra'"),
        (_doc(occurred_at="2026-13-01T09:00:00Z"), "occurred_at", "RFC3339"),
        (_doc(occurred_at="2026-03-01T09:00:00+01:00"), "occurred_at", "UTC"),
        (_doc(occurred_at=5), "occurred_at", "str"),
        (_doc(recorded_at="2026-03-01T09:00:00-05:00"), "recorded_at", "UTC"),
        (
            {
                "stream": "channel-huabei",
                "type": "ChannelStatusChanged",
                "occurred_at": "2026-03-01T09:00:00Z",
                "data": {
                    "channel": "huabei",
                    "status": "down",
                    "reason": "",
                    "expected_until": "2026-03-01T19:00:00+08:00",
                },
            },
            "data.expected_until",
            "UTC",
        ),
        (_doc(recorded_at="soon"), "recorded_at", "RFC3339"),
        (_doc(position="1"), "position", "int"),
        (_doc(stream=7), "stream", "str"),
        (_doc() | {"data": []}, "data", "object"),
    ],
    ids=lambda v: None,
)
def test_decode_errors_name_line_and_field(
    doc: dict[str, Any], field: str | None, words: str
) -> None:
    lines = [b"", json.dumps(_GOOD).encode(), b"   ", json.dumps(doc).encode() + b"\r\n"]
    items = read_lines(lines, "in.jsonl")
    assert next(items).line == 2
    with pytest.raises(FormatError) as info:
        next(items)
    error = info.value
    assert error.line == 4
    assert error.field == field
    assert error.source == "in.jsonl"
    assert words in str(error)
    assert str(error).startswith("in.jsonl:4:")


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{", "truncated"),
        (json.dumps(_GOOD).encode()[:-3], "truncated"),
        (b"{bad}", "malformed"),
        (b'{"stream": "a\xff"}', "UTF-8"),
        (b"\xef\xbb\xbf" + json.dumps(_GOOD).encode(), "malformed"),
        (b"[]", "object"),
        (b"null", "object"),
        (b"12", "object"),
        (json.dumps(_GOOD).encode() + b" x", "trailing"),
    ],
)
def test_unreadable_lines(raw: bytes, words: str) -> None:
    with pytest.raises(FormatError) as info:
        decode_line(raw, 9)
    assert info.value.line == 9
    assert words in str(info.value)
    assert str(info.value).startswith("line 9:")


def test_event_errors_found_at_import_name_the_line() -> None:
    async def go() -> None:
        async with open_store(":memory:") as store:
            items = read_lines(
                [json.dumps(_GOOD).encode(), json.dumps(_doc(stream="payment-P2")).encode()],
                "in.jsonl",
            )
            with pytest.raises(FormatError) as info:
                await store.import_events(items)
            assert (info.value.line, info.value.field) == (2, "stream")
            assert str(info.value).startswith("in.jsonl:2:")
            assert await store.head() == 0

    anyio.run(go, backend="asyncio")


@settings(max_examples=300)
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_are_an_item_or_a_format_error(raw: bytes) -> None:
    try:
        item = decode_line(raw, 1)
    except FormatError as e:
        line = e.line
    else:
        assert isinstance(item, ImportItem)
        line = item.line
    assert line == 1


@settings(max_examples=200)
@given(
    doc=st.fixed_dictionaries(
        {},
        optional={
            "stream": st.text(max_size=5) | st.integers(),
            "type": st.sampled_from(TYPES) | st.text(max_size=5),
            "occurred_at": st.sampled_from(["2026-03-01T09:00:00Z", "x", "2026-03-01"]),
            "data": st.dictionaries(
                st.sampled_from(["payment_id", "account_id", "amount_minor", "attempt", "x"]),
                st.none() | st.integers(-2, 2) | st.text(max_size=3) | st.booleans(),
            ),
            "event_id": st.none() | st.text(max_size=3),
        },
    )
)
def test_arbitrary_documents_are_an_item_or_a_format_error(doc: dict[str, Any]) -> None:
    try:
        item = decode_line(msgspec.json.encode(doc), 3)
    except FormatError as e:
        line = e.line
    else:
        assert type(item.event).__name__ == doc["type"]
        line = item.line
    assert line == 3


# --- hostile lines (issue 11) ----------------------------------------------------------------

_OPENED = (
    '{"stream": "account-A1", "type": "AccountOpened", "occurred_at": "2026-03-01T09:00:00Z", '
    '"data": {"account_id": "A1", "holder_ref": "H1"}}'
)


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 1000 + "]" * 1000,
        _OPENED.replace('"H1"', "[" * 1000 + "]" * 1000),
        _OPENED.replace('"H1"', '{"a": ' * 1000 + "1" + "}" * 1000),
        _OPENED.replace('"H1"', "[" * 17 + "]" * 17),  # past the limit, well within Python's
        _OPENED.replace('"H1"', "[" * 100_000 + "]" * 100_000),
    ],
    ids=["top", "data-1000", "objects-1000", "data-17", "data-100000"],
)
def test_deep_nesting_is_one_format_error(raw: str) -> None:
    """1,000 nested brackets used to escape as a RecursionError traceback."""
    with pytest.raises(FormatError) as info:
        next(read_lines([b"", raw.encode()], "deep.jsonl"))
    assert info.value.line == 2
    assert str(info.value).startswith("deep.jsonl:2: ")
    assert "nested more than 16 levels" in str(info.value)


def test_nesting_an_event_needs_is_read() -> None:
    item = decode_line(json.dumps(_GOOD), 1)  # envelope, data, candidates, candidate: 4 levels
    assert item.event.type == "ChannelDecided"


@pytest.mark.parametrize(
    ("raw", "field", "key"),
    [
        (_OPENED[:-1] + ', "stream": "account-A2"}', "stream", "stream"),
        (_OPENED[:-1] + ', "stream": "account-A1"}', "stream", "stream"),  # same value too
        (_OPENED.replace('"H1"', '"H1", "holder_ref": "H2"'), "data.holder_ref", "holder_ref"),
        (_OPENED.replace('"H1"', '"H1", "holder_ref": 7'), "data.holder_ref", "holder_ref"),
        (_OPENED.replace('"H1"', '"H\\"1", "holder_ref": "H2"'), "data.holder_ref", "holder_ref"),
        (
            _OPENED.replace('"H1"', '"H\\u0031", "holder_ref": "H1"'),
            "data.holder_ref",
            "holder_ref",
        ),
        (
            json.dumps(_GOOD).replace('"reason": "policy"', '"reason": "policy", "reason": "x"'),
            "data.candidates[0].reason",
            "reason",
        ),
        ('{"a": 1, "b": {"c": 2}, "a": 1}', "a", "a"),
    ],
    ids=["envelope", "envelope-same", "data", "data-int", "escaped", "unicode", "nested", "bare"],
)
def test_repeated_keys_are_refused(raw: str, field: str, key: str) -> None:
    """JSON leaves a repeated key's meaning open; msgspec kept the last one, silently."""
    with pytest.raises(FormatError) as info:
        decode_line(raw.encode(), 5, "dup.jsonl")
    assert (info.value.line, info.value.field) == (5, field)
    assert f"key {key!r} appears twice" in str(info.value)


def test_keys_repeated_in_different_objects_are_fine() -> None:
    item = decode_line(json.dumps(_GOOD), 1)  # "channel" and "reason" at two levels, once each
    assert item.stream == "payment-P1"


@pytest.mark.parametrize(
    ("raw", "field", "escape"),
    [
        (_OPENED.replace('"H1"', '"\\ud800"'), "data.holder_ref", "\\ud800"),
        (_OPENED.replace('"H1"', '"H\\uD800x"'), "data.holder_ref", "\\uD800"),
        (_OPENED.replace('"H1"', '"\\udc00"'), "data.holder_ref", "\\udc00"),
        (_OPENED.replace('"H1"', '"\\ud800\\u0041"'), "data.holder_ref", "\\ud800"),
        (_OPENED.replace('"holder_ref"', '"\\udfff"'), "data.\udfff", "\\udfff"),
        ('{"stream": "\\ud800', None, "\\ud800"),  # and truncated: the surrogate comes first
    ],
    ids=["high", "high-then-text", "low", "high-then-ascii", "in-a-key", "truncated"],
)
def test_a_lone_surrogate_is_named(raw: str, field: str | None, escape: str) -> None:
    """A lone surrogate escape used to be reported as "the line is truncated"."""
    with pytest.raises(FormatError) as info:
        decode_line(raw.encode(), 3)
    assert info.value.field == field
    assert f"{escape} is half of a UTF-16 surrogate pair" in str(info.value)
    assert "truncated" not in str(info.value)


def test_a_surrogate_pair_and_an_escaped_backslash_are_text() -> None:
    pair = decode_line(_OPENED.replace('"H1"', '"\\ud83d\\ude97"').encode(), 1).event
    assert isinstance(pair, AccountOpened)
    assert pair.holder_ref == "\U0001f697"
    backslash = decode_line(_OPENED.replace('"H1"', '"\\\\ud800"').encode(), 1).event
    assert isinstance(backslash, AccountOpened)
    assert backslash.holder_ref == "\\ud800"


# --- retry-safe import ---------------------------------------------------------------------


def test_derived_ids_are_deterministic_and_per_line() -> None:
    line = _OPENED.encode()
    first = [i.event_id for i in read_lines([line, line + b"\r\n"], derive_ids=True)]
    again = [i.event_id for i in read_lines([line + b"\n", line + b"\n"], derive_ids=True)]
    assert first == again  # the same bytes at the same line numbers; line endings do not count
    assert first[0] != first[1]  # two identical lines are two events
    for eid in first:
        assert eid is not None
        parsed = uuid.UUID(eid)
        assert parsed.version == 8
        assert parsed.variant == uuid.RFC_4122
    # the first 48 bits are occurred_at in Unix milliseconds, like the store's own v7 ids
    moment = datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert uuid.UUID(first[0]).int >> 80 == int(moment.timestamp() * 1000)
    other = _OPENED.replace('"H1"', '"H2"').encode()
    assert next(read_lines([other], derive_ids=True)).event_id != first[0]  # content counts
    assert [i.event_id for i in read_lines([line])] == [None]  # off by default


def test_derived_ids_keep_an_explicit_id() -> None:
    doc = json.loads(_OPENED) | {"event_id": "0190a7a8-8b4e-7c3d-9a1b-2c3d4e5f6a7b"}
    (item,) = read_lines([json.dumps(doc).encode()], derive_ids=True)
    assert item.event_id == "0190a7a8-8b4e-7c3d-9a1b-2c3d4e5f6a7b"


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_importing_a_file_without_ids_twice_adds_nothing(backend: str, tmp_path: Path) -> None:
    """The natural retry after an interrupted import must be a no-op."""
    lines = [json.dumps(_GOOD).encode(), _OPENED.encode(), _OPENED.encode(), b""]
    target = ":memory:" if backend == "memory" else str(tmp_path / "l.db")

    async def go() -> None:
        async with open_store(target) as store:
            first = await store.import_events(read_lines(lines, "f.jsonl", derive_ids=True))
            assert (first.appended, first.skipped) == (3, 0)
            again = await store.import_events(read_lines(lines, "f.jsonl", derive_ids=True))
            assert (again.appended, again.skipped) == (0, 3)
            assert await store.head() == 3
            assert (await store.verify()).ok

    anyio.run(go, backend="asyncio")
