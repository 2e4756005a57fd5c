"""Opening a PostgreSQL store: URLs, credentials, roles, and the one-line errors a user meets
(through ``open_store`` and through ``payledger --db URL ...``), never with a password in them."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pg_support import admin, database_url, run, server_url, sync_database
from store_contract import opened, requested

from ledger import (
    ImportItem,
    LedgerError,
    NotALedgerError,
    ReadOnlyError,
    SchemaVersionError,
    StoreError,
    open_store,
)
from ledger._pg.sql import escape, unescape
from ledger._pg.url import is_postgres_url, mask, redact
from ledger.postgres import PostgresEventStore
from replay.cli import main

SECRET = "hunter2-s3cr3t"


def _with(
    url: str, *, user: str | None = None, password: str | None = None, query: str = ""
) -> str:
    """``url`` with another user, password (``""``: none) or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    name = user if user is not None else parts.username or ""
    secret = parts.password if password is None else password
    userinfo = f"{name}:{secret}@" if secret else f"{name}@"
    return urlunsplit(parts._replace(netloc=f"{userinfo}{host}{port}", query=query))


def _password(url: str) -> str:
    password = urlsplit(url).password
    assert password
    return password


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _open(url: str, *, readonly: bool) -> Callable[[], Awaitable[None]]:
    async def attempt() -> None:
        async with open_store(url, readonly=readonly):
            pass

    return attempt


def _one_line_without_secrets(text: str, *secrets: str) -> None:
    assert text.strip(), "no message"
    assert "\n" not in text.strip(), text
    assert "Traceback" not in text
    for secret in secrets:
        assert secret not in text, text


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ledger@db-1:5432/payments", "postgresql://ledger@db-1:5432/payments"),
        (
            "postgresql://ledger:hunter2@db-1:5432/payments",
            "postgresql://ledger:***@db-1:5432/payments",
        ),
        ("postgres://ledger:p%40ss@db-1/payments", "postgres://ledger:***@db-1/payments"),
        ("postgresql://ledger:p@ss/w@rd@db-1/payments", "postgresql://ledger:***@db-1/payments"),
        (
            "postgresql://ledger:x@h1:5432,h2:5433/payments?sslmode=require",
            "postgresql://ledger:***@h1:5432,h2:5433/payments?sslmode=require",
        ),
        (
            "postgresql://db-1/payments?user=ledger&password=hunter2&sslmode=verify-full",
            "postgresql://db-1/payments?user=ledger&password=***&sslmode=verify-full",
        ),
        ("postgresql:///payments?PassWord=hunter2", "postgresql:///payments?PassWord=***"),
        ("postgresql://", "postgresql://"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert is_postgres_url(url)
    assert mask(url) == shown


def test_redact_scrubs_every_known_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    url = "postgresql://ledger:p%40ss@db-1/payments?password=other"
    text = "a p@ss, a p%40ss, an other\nand from-the-environment"
    assert redact(text, url) == "a ***, a ***, an *** and ***"
    assert not is_postgres_url("ledger.db")
    assert not is_postgres_url(Path("postgresql://x"))


@given(st.text())
def test_text_column_escaping_round_trips(value: str) -> None:
    stored = escape(value)
    assert "\x00" not in stored
    assert unescape(stored) == value
    if "\x00" not in value and "\uffff" not in value:
        assert stored == value


# --- errors --------------------------------------------------------------------------------


def _foreign(url: str) -> None:
    async def make() -> None:
        async with admin(url) as conn:
            await conn.execute("CREATE TABLE customers (id integer PRIMARY KEY, name text)")

    run(make)


def _newer(url: str) -> None:
    async def make() -> None:
        async with open_store(url) as store:
            await store.append("account-A1", [opened("A1")])
        async with admin(url) as conn:
            await conn.execute("UPDATE ledger_meta SET schema_version = 99")

    run(make)


def _other_application(url: str) -> None:
    async def make() -> None:
        async with admin(url) as conn:
            await conn.execute("CREATE TABLE ledger_meta (id integer, owner text)")

    run(make)


@pytest.fixture
def database() -> Iterator[str]:
    with sync_database() as url:
        yield url


_CASES: list[tuple[str, str, type[LedgerError], str, tuple[bool, ...]]] = [
    # (id, how the URL is made, error, words in it, read-only modes tried)
    ("malformed-port", "port", StoreError, "not a valid PostgreSQL URL", (False, True)),
    ("malformed-host", "ipv6", StoreError, "not a valid PostgreSQL URL", (False, True)),
    ("bad-sslmode", "sslmode", StoreError, "sslmode", (False, True)),
    ("server-down", "down", StoreError, "cannot connect", (False, True)),
    ("ssl-refused", "ssl", StoreError, "SSL", (False, True)),
    ("wrong-password", "password", StoreError, "password authentication failed", (False, True)),
    ("no-such-database", "database", StoreError, "does not exist", (False, True)),
    ("foreign-database", "foreign", NotALedgerError, "not a payledger store", (False, True)),
    ("other-ledger-meta", "other", NotALedgerError, "not a payledger store", (False, True)),
    ("empty-read-only", "empty", NotALedgerError, "empty database", (True,)),
    ("newer-schema", "newer", SchemaVersionError, "newer payledger", (False, True)),
]


@pytest.mark.parametrize(
    ("how", "error", "words", "modes"),
    [case[1:] for case in _CASES],
    ids=[case[0] for case in _CASES],
)
def test_unusable_targets_give_one_line_errors(
    database: str,
    capsys: pytest.CaptureFixture[str],
    how: str,
    error: type[LedgerError],
    words: str,
    modes: tuple[bool, ...],
) -> None:
    real = _password(database)
    port = urlsplit(database).port
    url = {
        "port": f"postgresql://payledger:{SECRET}@127.0.0.1:notaport/payledger",
        "ipv6": f"postgresql://payledger:{SECRET}@[::1/payledger",
        "sslmode": _with(database, password=SECRET, query="sslmode=bogus"),
        "down": f"postgresql://payledger:{SECRET}@127.0.0.1:{_free_port()}/payledger",
        "ssl": _with(database, query="sslmode=require"),
        "password": _with(database, password=SECRET),
        "database": database_url(database, "payledger_no_such_database"),
    }.get(how, database)
    if how == "foreign":
        _foreign(database)
    elif how == "other":
        _other_application(database)
    elif how == "newer":
        _newer(database)
    assert port is not None
    for readonly in modes:
        with pytest.raises(error) as info:
            run(_open(url, readonly=readonly))
        message = str(info.value)
        assert words in message
        assert message.startswith(mask(url))
        _one_line_without_secrets(message, SECRET, real)
        _one_line_without_secrets(repr(info.value), SECRET, real)
    commands = [["verify"], ["export"]]
    if False in modes:
        commands.append(["import", "-"])
    for command in commands:
        code, _, err = _cli(capsys, "--db", url, *command)
        assert code == 2
        assert err.startswith("payledger: ")
        _one_line_without_secrets(err, SECRET, real)
    if how == "foreign":  # refused, and left as it was

        async def tables() -> list[str]:
            async with admin(database) as conn:
                rows = await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                )
            return [row[0] for row in rows]

        assert run(tables) == ["customers"]


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- credentials ---------------------------------------------------------------------------


def test_the_store_shows_its_url_without_the_password(database: str) -> None:
    real = _password(database)

    async def check() -> None:
        async with open_store(database) as store:
            assert isinstance(store, PostgresEventStore)
            assert real not in repr(store)
            assert real not in store.path
            assert store.path == mask(database)
            await store.aclose()
            with pytest.raises(StoreError) as info:
                await store.head()
            _one_line_without_secrets(str(info.value), real)

    run(check)


def test_password_from_pgpassword(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bare = _with(database, password="")
    monkeypatch.setenv("PGPASSWORD", _password(database))
    monkeypatch.delenv("PGPASSFILE", raising=False)

    async def use() -> int:
        async with open_store(bare) as store:
            await store.append("account-A1", [opened("A1")])
            return await store.head()

    assert run(use) == 1
    monkeypatch.setenv("PGPASSWORD", SECRET)
    with pytest.raises(StoreError, match="password authentication failed") as info:
        run(_open(bare, readonly=True))
    _one_line_without_secrets(str(info.value), SECRET)


def test_password_from_a_password_file(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = urlsplit(database)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{parts.hostname}:{parts.port}:*:{parts.username}:{parts.password}\n")
    passfile.chmod(0o600)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    bare = _with(database, password="", query="sslmode=disable")

    async def use() -> int:
        async with open_store(bare) as store:
            await store.append("account-A1", [opened("A1")])
        async with open_store(bare, readonly=True) as store:
            return await store.head()

    assert run(use) == 1


# --- roles: a writer and a read-only auditor -----------------------------------------------

WRITER_GRANTS = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON ledger_meta TO {role};
GRANT SELECT, INSERT ON events TO {role};
GRANT SELECT, UPDATE ON ledger_head TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ledger_states, ledger_state_checkpoints TO {role};
"""
AUDITOR_GRANTS = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON ledger_meta, events, ledger_head, ledger_states, ledger_state_checkpoints
    TO {role};
"""


def test_writer_and_auditor_roles(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The grants the README gives are enough, and no more than enough."""
    suffix = uuid.uuid4().hex[:8]
    writer, auditor = f"ledger_writer_{suffix}", f"ledger_auditor_{suffix}"
    password = uuid.uuid4().hex

    async def setup() -> None:
        async with open_store(database) as store:  # the owner creates the schema
            await store.append("account-A1", [opened("A1")])
        async with admin(database) as conn:
            for role, grants in ((writer, WRITER_GRANTS), (auditor, AUDITOR_GRANTS)):
                await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
                await conn.execute(grants.format(role=role))
            await conn.execute(  # schema version 3: the Merkle tree's nodes
                f"GRANT SELECT, INSERT ON ledger_tree TO {writer}; "
                f"GRANT SELECT ON ledger_tree TO {auditor}"
            )

    async def teardown() -> None:
        async with admin(database) as conn:
            for role in (writer, auditor):
                await conn.execute(f"DROP OWNED BY {role}")
                await conn.execute(f"DROP ROLE {role}")

    run(setup)
    try:
        as_writer = _with(database, user=writer, password=password)
        as_auditor = _with(database, user=auditor, password=password)

        async def write() -> None:
            async with open_store(as_writer) as store:
                await store.append("payment-P1", [requested("P1")], expected_version=0)
                await store.import_events([ImportItem(stream="payment-P2", event=requested("P2"))])
                assert (await store.verify()).ok
            async with open_store(as_writer, readonly=True) as store:  # even a writer's role
                assert isinstance(store, PostgresEventStore)
                with pytest.raises(ReadOnlyError):
                    await store.append("payment-P3", [requested("P3")])
                for sql in (
                    "UPDATE ledger_head SET position = 0",
                    "INSERT INTO events DEFAULT VALUES",
                ):
                    with pytest.raises(ReadOnlyError) as info:
                        await store.fetch(sql)
                    _one_line_without_secrets(str(info.value), password)

        async def audit() -> None:
            async with open_store(as_auditor, readonly=True) as store:
                assert (await store.verify()).ok
                assert await store.head() == 3
            async with open_store(as_auditor) as store:  # writable open; the role cannot write
                with pytest.raises(StoreError) as info:
                    await store.append("payment-P4", [requested("P4")])
                assert "permission denied" in str(info.value)
                _one_line_without_secrets(str(info.value), password)
                assert await store.head() == 3

        run(write)
        run(audit)
        for command in (["verify"], ["export"], ["audit", "--stream", "payment-P1"]):
            code, out, err = _cli(capsys, "--db", as_auditor, *command)
            assert code == 0, err
        assert "payment-P1" in out
    finally:
        run(teardown)


def test_server_url_is_required_under_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    url = server_url()
    monkeypatch.delenv("PAYLEDGER_TEST_POSTGRES_URL")
    monkeypatch.setenv("PAYLEDGER_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="did not start"):
        server_url()
    monkeypatch.setenv("PAYLEDGER_REQUIRE_POSTGRES", "0")
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server"):
        server_url()
    assert url
