"""Signed checkpoints of the log (CONTRACT section 8): a C2SP ``tlog-checkpoint`` inside a C2SP
``signed-note``, signed with Ed25519, so that the tree head can be kept away from the store and
checked by any tlog tool (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note).

A checkpoint note reads::

    payledger                                      <- origin
    1000000                                        <- tree size, decimal, no leading zero
    <base64 of the 32-byte root hash>              <- RFC 9162 root of the first size events
                                                   <- blank line
    — payledger <base64(4-byte key id || 64-byte Ed25519 signature over the lines above)>

Guarantees: :func:`verify_checkpoint` returns only when the note is well-formed (strict
UTF-8, no control characters but newlines, canonical base64, a size without a leading zero, a
root of exactly 32 bytes, non-empty lines) and carries a signature by the given key under the
given name (by default the origin) that verifies; signatures by other keys are ignored, as the
note format requires. Anything else raises :class:`CheckpointError` with one line saying what is
wrong. Keys are Ed25519 (the ``cryptography`` package): the private key in an unencrypted
PKCS#8 PEM file of mode 0600, the public key in a SubjectPublicKeyInfo PEM file beside it.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import msgspec
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import _note
from .errors import LedgerError

__all__ = [
    "DEFAULT_ORIGIN",
    "Checkpoint",
    "CheckpointError",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_checkpoint",
    "parse_verifier_key",
    "sign_checkpoint",
    "verifier_key",
    "verify_checkpoint",
    "write_keypair",
]

DEFAULT_ORIGIN = "payledger"
"""The origin line (and key name) when none is given."""

_SIZE = re.compile(r"0|[1-9][0-9]*")
_MAX_SIZE = 2**64 - 1
_ROOT_SIZE = 32


class CheckpointError(LedgerError):
    """Raised when a checkpoint or a key cannot be used: a malformed note or checkpoint body, a
    signature missing, truncated or made by another key, an edited note, or a key file that is
    missing, unreadable or not an Ed25519 key. The message is one line saying what is wrong."""


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A tree head: the root of the first ``size`` events of the log named ``origin``."""

    size: int
    root_hash: bytes
    origin: str = DEFAULT_ORIGIN
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The checkpoint's note text: origin, size, base64 root, extension lines."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "".join(f"{line}\n" for line in [*lines, *self.extensions])


def _fail(message: str) -> CheckpointError:
    return CheckpointError(" ".join(message.split("\n")))


def _check_line(what: str, line: str) -> None:
    if not line or any(c < " " for c in line):
        raise _fail(f"the {what} {line!r} is empty or holds a control character")


# --- signing, reading, verifying --------------------------------------------------------------


def sign_checkpoint(
    checkpoint: Checkpoint, private_key: Ed25519PrivateKey, *, key_name: str | None = None
) -> str:
    """The signed note of ``checkpoint``, signed under ``key_name`` (default: its origin)."""
    _check_line("origin", checkpoint.origin)
    for line in checkpoint.extensions:
        _check_line("extension line", line)
    size = checkpoint.size
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_SIZE:
        raise _fail(f"tree size must be an integer from 0 to 2**64 - 1, not {size!r}")
    if len(checkpoint.root_hash) != _ROOT_SIZE:
        raise _fail(f"the root hash is {_ROOT_SIZE} bytes, not {len(checkpoint.root_hash)}")
    name = checkpoint.origin if key_name is None else key_name
    if not _note.valid_key_name(name):
        raise _fail(f"key name {name!r} is empty or holds a space or a '+'; pass another key_name")
    return _note.sign_note(checkpoint.body(), private_key, name)


def _parse(text: str | bytes) -> tuple[_note.Note, Checkpoint]:
    try:
        note = _note.parse_note(text)
    except ValueError as e:
        raise _fail(f"malformed checkpoint note: {e}") from None
    lines = note.text[:-1].split("\n")
    if len(lines) < 3:
        raise _fail(
            f"malformed checkpoint: {len(lines)} line(s) of text; it needs origin, size and root"
        )
    for number, line in enumerate(lines, 1):
        if not line:
            raise _fail(f"malformed checkpoint: line {number} of the checkpoint is empty")
    origin, size_line, root_line, *extensions = lines
    if not _SIZE.fullmatch(size_line) or int(size_line) > _MAX_SIZE:
        raise _fail(
            f"malformed checkpoint: the tree size line {size_line[:40]!r} is not a decimal"
            " number below 2**64 without sign or leading zero"
        )
    root = _note.std_b64decode(root_line)
    if root is None or len(root) != _ROOT_SIZE:
        raise _fail(
            f"malformed checkpoint: the root hash line {root_line[:60]!r} is not the standard"
            f" base64 of {_ROOT_SIZE} bytes"
        )
    checkpoint = Checkpoint(
        origin=origin, size=int(size_line), root_hash=root, extensions=tuple(extensions)
    )
    return note, checkpoint


def parse_checkpoint(text: str | bytes) -> Checkpoint:
    """Read a checkpoint note without checking any signature (see :func:`verify_checkpoint`)."""
    return _parse(text)[1]


def verify_checkpoint(
    text: str | bytes,
    public_key: Ed25519PublicKey,
    *,
    key_name: str | None = None,
    origin: str | None = None,
) -> Checkpoint:
    """Read a checkpoint note and check its signature by ``public_key`` under ``key_name``
    (default: the checkpoint's origin); with ``origin``, also check the origin line."""
    note, checkpoint = _parse(text)
    if origin is not None and checkpoint.origin != origin:
        raise _fail(f"the checkpoint's origin is {checkpoint.origin!r}, not {origin!r}")
    name = checkpoint.origin if key_name is None else key_name
    try:
        _note.verify_note(note, public_key, name)
    except ValueError as e:
        raise _fail(f"checkpoint refused: {e}") from None
    return checkpoint


# --- keys -------------------------------------------------------------------------------------


def generate_key() -> Ed25519PrivateKey:
    """A new Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte C2SP key id of ``public_key`` under ``name``."""
    return _note.key_id(name, public_key)


def verifier_key(public_key: Ed25519PublicKey, name: str = DEFAULT_ORIGIN) -> str:
    """The C2SP/Go verifier key string ``<name>+<hex key id>+<base64(0x01 || key)>``."""
    try:
        return _note.verifier_key(name, public_key)
    except ValueError as e:
        raise _fail(str(e)) from None


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """The key name and public key of a verifier key string."""
    try:
        return _note.parse_verifier_key(vkey)
    except ValueError as e:
        raise _fail(str(e)) from None


def write_keypair(
    path: str | os.PathLike[str],
    private_key: Ed25519PrivateKey | None = None,
    *,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write ``private_key`` (default: a new one) to ``path`` (PKCS#8 PEM, unencrypted, mode
    0600) and its public key to ``path`` + ``.pub`` (SubjectPublicKeyInfo PEM). Refuses to
    replace an existing file unless ``overwrite``. Returns both paths."""
    key = generate_key() if private_key is None else private_key
    private_path = Path(path)
    public_path = Path(f"{private_path}.pub")
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not overwrite:
        for target in (private_path, public_path):
            if target.exists():
                raise _fail(f"{target} already exists; not replacing a key")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    files = ((private_path, private_pem, 0o600), (public_path, public_pem, 0o644))
    for target, data, mode in files:
        try:
            fd = os.open(target, flags, mode)
        except FileExistsError:
            raise _fail(f"{target} already exists; not replacing a key") from None
        except OSError as e:
            raise _fail(f"cannot write {target}: {e.strerror}") from None
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return private_path, public_path


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise _fail(f"cannot read {os.fspath(path)}: {e.strerror}") from None


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file at ``path`` (unencrypted)."""
    data = _read(path)
    where = os.fspath(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise _fail(f"{where} is encrypted; payledger needs an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise _fail(f"{where} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise _fail(f"{where} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file at ``path``."""
    data = _read(path)
    where = os.fspath(path)
    if b"PRIVATE KEY-----" in data:
        raise _fail(f"{where} is a private key; give its public key ({where}.pub)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise _fail(f"{where} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise _fail(f"{where} holds a {type(key).__name__}, not an Ed25519 public key")
    return key
