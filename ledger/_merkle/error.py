"""The one error of the Merkle tree layer."""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = ["MerkleError"]


class MerkleError(LedgerError):
    """Raised when a Merkle tree operation is asked for something the log cannot give or a
    value it cannot read: a leaf index or tree size outside the log, a proof document with a
    missing, extra or malformed field, or a serialised frontier of the wrong shape.

    The message is one line saying what is wrong.
    """
