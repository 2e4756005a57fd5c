"""asyncpg and OS errors, translated at the boundary into :mod:`ledger.errors`.

Every message is one line that starts with the masked URL and what the store was doing
(``postgresql://ledger:***@db-1:5432/payments: append: ...``), and is scrubbed of every password
the store knows of (:func:`ledger._pg.url.redact`).
"""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions

from ..errors import LedgerError, ReadOnlyError, StoreError
from .url import redact

__all__ = ["is_connection_error", "translate"]

_LOST = (
    asyncpg.PostgresConnectionError,  # the connection does not exist, failed, was rejected
    asyncpg.exceptions.AdminShutdownError,  # pg_terminate_backend, a fast shutdown
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # starting up or shutting down
    ConnectionError,
    TimeoutError,
)


def is_connection_error(e: BaseException) -> bool:
    """Whether ``e`` means the connection is gone (or never came), not that a statement failed."""
    if isinstance(e, _LOST):
        return True
    if isinstance(e, asyncpg.InterfaceError) and "closed" in str(e):
        return True
    return isinstance(e, OSError) and not isinstance(e, asyncpg.PostgresError)


def _message(e: BaseException) -> str:
    if isinstance(e, asyncpg.PostgresError):
        return str(getattr(e, "message", None) or e)
    if isinstance(e, OSError) and e.strerror and not str(e).startswith("Multiple"):
        return e.strerror.lower()
    return str(e) or type(e).__name__


def translate(e: BaseException, where: str, url: str, *, connecting: bool = False) -> LedgerError:
    """The :class:`LedgerError` for ``e``, raised by the caller ``from e``. ``where`` is the
    masked URL and the operation; ``url`` is the real one (its passwords are scrubbed)."""
    message = _message(e)
    error: LedgerError
    if isinstance(e, asyncpg.exceptions.ReadOnlySQLTransactionError):
        error = ReadOnlyError(f"{where}: the store is read-only ({message})")
    elif isinstance(e, (asyncpg.ClientConfigurationError, ValueError, TypeError, OverflowError)):
        error = StoreError(f"{where}: not a valid PostgreSQL URL ({message})")
    elif isinstance(e, asyncpg.exceptions.LockNotAvailableError):
        error = StoreError(f"{where}: the store stayed busy past the lock timeout ({message})")
    elif isinstance(e, asyncpg.exceptions.InsufficientPrivilegeError):
        error = StoreError(f"{where}: the role may not do this ({message})")
    elif isinstance(e, TimeoutError):
        error = StoreError(f"{where}: the server did not answer in time")
    elif connecting and is_connection_error(e):
        error = StoreError(f"{where}: cannot connect to the server ({message})")
    elif is_connection_error(e):
        error = StoreError(f"{where}: the connection to the server was lost ({message})")
    else:
        error = StoreError(f"{where}: {message}")
    return type(error)(redact(str(error), url))
