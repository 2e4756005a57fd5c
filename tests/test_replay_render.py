"""The replay commands' human output helpers: money, event descriptions, timestamps given on the
command line, and the progress bar (shown on a terminal only)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from ledger import events as ev
from ledger.errors import LedgerError
from replay.render import describe, money
from replay.terminal import parse_timestamp, progress_bar

T = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_money_is_integer_arithmetic() -> None:
    assert money(0) == "0.00"
    assert money(5) == "0.05"
    assert money(123_456_789, "CNY") == "1,234,567.89 CNY"
    assert money(-150) == "-1.50"


def test_describe_says_what_happened() -> None:
    status = ev.CreditStatusChanged(
        occurred_at=T,
        account_id="A1",
        product="huabei",
        old_status="active",
        new_status="suspended",
        reason="overdue",
    )
    assert describe(status) == "huabei active -> suspended (overdue)"
    policy = ev.ChannelPolicySet(
        occurred_at=T,
        merchant="zd-auto",
        scenario="car_loan_down_payment",
        allowed_channels=("bank_card",),
        reason="cards only",
    )
    assert describe(policy) == "car_loan_down_payment: only bank_card (cards only)"
    decided = ev.ChannelDecided(
        occurred_at=T,
        payment_id="P1",
        attempt=1,
        channel="huabei",
        candidates=(
            ev.Candidate(channel="huabei", eligible=True, reason="up"),
            ev.Candidate(channel="jiebei", eligible=False, reason="no line"),
        ),
        rule="preferred_channel",
    )
    assert describe(decided) == "attempt 1 -> huabei (preferred_channel; eligible: huabei)"
    settled = ev.PaymentSettled(
        occurred_at=T, payment_id="P1", attempt=1, channel="huabei", amount_minor=120_000
    )
    assert describe(settled) == "attempt=1 channel=huabei amount=1,200.00"


def test_parse_timestamp() -> None:
    assert parse_timestamp("2026-03-01T09:00:00Z", "--since") == T
    assert parse_timestamp("2026-03-01T17:00:00+08:00", "--since") == T
    assert parse_timestamp("2026-03-01", "--since") == T.replace(hour=0)  # midnight UTC
    for bad in (
        "",
        "tomorrow",
        "2026-13-01",
        "'; DROP TABLE events; --",
        "\x00",
        "9" * 10_000,
        "20260301",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    ):
        with pytest.raises(LedgerError, match="--until"):
            parse_timestamp(bad, "--until")


@pytest.mark.parametrize("naive", ["2026-03-01T09:00:00", "2026-03-01 09:00", "2026-03-01T09"])
def test_a_time_without_a_zone_is_refused(naive: str) -> None:
    """It used to be taken as UTC; a user in +08:00 would have filtered eight hours off."""
    with pytest.raises(LedgerError) as info:
        parse_timestamp(naive, "--since")
    assert str(info.value).startswith("--since: ")
    assert "no time zone" in str(info.value)


def test_progress_bar_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    with progress_bar(Console(file=quiet), 100, "work") as tick:
        tick(50)
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    with progress_bar(Console(file=shown, force_terminal=True, width=80), 100, "work") as tick:
        tick(50)
        tick(100)
    assert "work" in shown.getvalue()
