"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures: the envelope a
checkpoint travels in. Private: :mod:`ledger.checkpoint` is the public face.

A note is a text ending in a newline, a blank line, then signature lines
``"\u2014 <key name> <base64(4-byte key id || signature)>\n"``. The key id of an Ed25519 key is
the first four bytes of SHA-256(key name || 0x0A || 0x01 || 32-byte public key); the signature
is Ed25519 over the text. Errors are :class:`ValueError` with a one-line message, turned into
:class:`~ledger.checkpoint.CheckpointError` by the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "Note",
    "NoteSignature",
    "key_id",
    "key_label",
    "parse_note",
    "parse_verifier_key",
    "sign_note",
    "std_b64decode",
    "valid_key_name",
    "verifier_key",
    "verify_note",
]

ED25519 = 0x01
"""The signature type byte of Ed25519 in C2SP signed-note."""

DASH = "\u2014 "
"""What opens every signature line: an em dash and a space."""

MAX_SIGNATURES = 100
_SIGNATURE_SIZE = 64


class NoteSignature(msgspec.Struct, frozen=True):
    """One signature line: who signed (name and 4-byte key id) and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


class Note(msgspec.Struct, frozen=True):
    """A parsed note: its signed text (with its final newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]


def valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode space, no ``+`` (and, being text of a note, no control char)."""
    return bool(name) and "+" not in name and not any(c.isspace() or c < " " for c in name)


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key id of an Ed25519 key under ``name``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + _raw(public_key)).digest()[:4]


def key_label(name: str, kid: bytes) -> str:
    """``name+<8 hex digits>``: how messages name a key."""
    return f"{name}+{kid.hex()}"


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key string ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
    if not valid_key_name(name):
        raise ValueError(f"key name {name!r} is empty or holds a space or a '+'")
    data = base64.b64encode(bytes([ED25519]) + _raw(public_key)).decode()
    return f"{key_label(name, key_id(name, public_key))}+{data}"


def std_b64decode(text: str) -> bytes | None:
    """Standard, padded, canonical base64, or ``None``."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    return data if base64.b64encode(data).decode() == text else None


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """The name and Ed25519 public key of a verifier key string, its key id checked."""
    name, _, rest = vkey.strip().partition("+")
    kid_hex, _, data64 = rest.partition("+")
    data = std_b64decode(data64)
    if not valid_key_name(name) or len(kid_hex) != 8 or data is None:
        raise ValueError("not a verifier key of the form <name>+<8 hex digits>+<base64 key>")
    if len(data) != 33 or data[0] != ED25519:
        raise ValueError("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
    public_key = Ed25519PublicKey.from_public_bytes(data[1:])
    if key_id(name, public_key).hex() != kid_hex.lower():
        raise ValueError(f"the verifier key's id {kid_hex} does not match its name and key")
    return name, public_key


def parse_note(data: str | bytes) -> Note:
    """Split a signed note into text and signature lines, checking the syntax only."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"the note is not valid UTF-8 (byte {e.start})") from None
    try:
        data.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"the note is not valid UTF-8 (character {e.start})") from None
    for i, c in enumerate(data):
        if c < " " and c != "\n":
            raise ValueError(f"the note holds control character {c!r} at offset {i}")
    split = data.rfind("\n\n")
    if split < 0:
        raise ValueError("the note has no blank line between its text and its signatures")
    text, block = data[: split + 1], data[split + 2 :]
    if not block:
        raise ValueError("the note has no signature line after its blank line")
    if not block.endswith("\n"):
        raise ValueError("the note's last signature line does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise ValueError(f"the note has {len(lines)} signature lines, more than {MAX_SIGNATURES}")
    signatures = []
    for number, line in enumerate(lines, 1):
        if not line.startswith(DASH):
            raise ValueError(f"signature line {number} does not start with an em dash and a space")
        name, space, b64 = line[len(DASH) :].partition(" ")
        if not space or not valid_key_name(name):
            raise ValueError(f"signature line {number} has no valid key name before a space")
        raw = std_b64decode(b64)
        if raw is None:
            raise ValueError(f"signature line {number} of {name!r} is not valid base64")
        if len(raw) < 5:
            raise ValueError(f"signature line {number} of {name!r} is {len(raw)} bytes, too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return Note(text, tuple(signatures))


def sign_note(text: str, private_key: Ed25519PrivateKey, name: str) -> str:
    """The note: ``text`` (ending in a newline), a blank line, one Ed25519 signature line."""
    if not text.endswith("\n"):
        raise ValueError("a note's text ends with a newline")
    if not valid_key_name(name):
        raise ValueError(f"key name {name!r} is empty or holds a space or a '+'")
    kid = key_id(name, private_key.public_key())
    signature = base64.b64encode(kid + private_key.sign(text.encode())).decode()
    return f"{text}\n{DASH}{name} {signature}\n"


def verify_note(note: Note, public_key: Ed25519PublicKey, name: str) -> None:
    """Check that ``note`` carries a signature by ``public_key`` under ``name`` and that every
    such signature verifies; signatures by other keys are ignored (C2SP signed-note)."""
    kid = key_id(name, public_key)
    mine = [s for s in note.signatures if s.name == name and s.key_id == kid]
    if not mine:
        others = ", ".join(key_label(s.name, s.key_id) for s in note.signatures)
        if any(s.name == name for s in note.signatures):
            raise ValueError(
                f"signed by another key under the name {name!r} ({others}),"
                f" not by the given key {key_label(name, kid)}"
            )
        raise ValueError(f"no signature under the key name {name!r} (signed by {others})")
    for s in mine:
        if len(s.signature) != _SIGNATURE_SIZE:
            raise ValueError(
                f"the signature by key {key_label(name, kid)} is {len(s.signature)} bytes,"
                f" not {_SIGNATURE_SIZE} (truncated?)"
            )
        try:
            public_key.verify(s.signature, note.text.encode())
        except InvalidSignature:
            raise ValueError(
                f"the signature by key {key_label(name, kid)} does not verify:"
                " the note was altered after it was signed"
            ) from None
