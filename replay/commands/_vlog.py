"""What the verifiable-log commands (``keygen``, ``checkpoint``, ``proof``, ``verify
--checkpoint``, ``explain --proofs``, ``check-proofs``) share: option types for key names,
reading a checkpoint note and checking its signature, and the one line a finding prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ledger.checkpoint import Checkpoint, CheckpointError, key_id, load_public_key
from ledger.checkpoint import verify_checkpoint as _verify
from ledger.errors import LedgerError

__all__ = ["finding", "origin_name", "read_file", "signed_checkpoint"]


def origin_name(text: str) -> str:
    """A checkpoint origin that is also its key name: not empty, no space, no '+', no control
    character (C2SP signed-note key names)."""
    if not text or "+" in text or any(c.isspace() or not c.isprintable() for c in text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a key name: not empty, without spaces or '+'"
        )
    return text


def finding(message: str) -> int:
    """Print ``payledger: message`` as one line on stderr; returns exit code 1 (a finding)."""
    line = " ".join("".join(c if c.isprintable() else " " for c in message).split())
    print(f"payledger: {line}", file=sys.stderr, flush=True)
    return 1


def read_file(path: str, what: str) -> bytes:
    """The bytes of the file the user named (``-``: standard input)."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise LedgerError(f"{what} {path}: is a directory") from None


def signed_checkpoint(
    note: bytes, note_name: str, public_key_path: str
) -> tuple[Checkpoint, str] | str:
    """The checkpoint of ``note`` and the 8 hex digits of the key id that signed it, if its
    signature by the key in ``public_key_path`` (under the checkpoint's origin) verifies;
    otherwise the one line saying why it is refused. A key file that cannot be used raises
    (bad input, exit 2)."""
    key = load_public_key(public_key_path)
    try:
        checkpoint = _verify(note, key)
    except CheckpointError as e:
        return f"{note_name}: {e}"
    return checkpoint, key_id(checkpoint.origin, key).hex()
