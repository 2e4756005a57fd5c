"""Signed checkpoints (CONTRACT section 8): C2SP tlog-checkpoint in a C2SP signed note, checked
against an independent reading of both formats written here, a published signed-note vector,
and every way a note can be wrong, each refused with one line."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from ledger import _note
from ledger.checkpoint import (
    DEFAULT_ORIGIN,
    Checkpoint,
    CheckpointError,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
    verify_checkpoint,
    write_keypair,
)
from ledger.errors import LedgerError

ROOT = hashlib.sha256(b"some root").digest()

# --- an independent reading of C2SP signed-note and tlog-checkpoint -----------------------------


def raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


NOTE = re.compile(
    r"(?P<text>(?:[^\n]*\n)+?)\n(?P<sigs>(?:\u2014 [^ \n]+ [A-Za-z0-9+/]+={0,2}\n)+)", re.DOTALL
)


def read_signed_checkpoint(note: str, public_key: Ed25519PublicKey, name: str) -> dict[str, object]:
    """Read a checkpoint note from the specifications alone: the text up to the blank line
    before the signature block, then signature lines; the key id is SHA-256(name || LF || 0x01
    || key)[:4]; the checkpoint is origin, size, base64 root, extensions."""
    found = NOTE.fullmatch(note)
    assert found, note
    text = found["text"]
    wanted_id = hashlib.sha256(name.encode() + b"\n\x01" + raw(public_key)).digest()[:4]
    verified = 0
    for line in found["sigs"].splitlines():
        who, blob = line[2:].split(" ")
        sig = base64.b64decode(blob, validate=True)
        if who == name and sig[:4] == wanted_id:
            public_key.verify(sig[4:], text.encode())  # raises if wrong
            verified += 1
    assert verified == 1
    origin, size, root, *extensions = text[:-1].split("\n")
    assert re.fullmatch(r"0|[1-9][0-9]*", size)
    return {
        "origin": origin,
        "size": int(size),
        "root": base64.b64decode(root, validate=True),
        "extensions": extensions,
    }


# --- a published vector: the example of golang.org/x/mod/sumdb/note ----------------------------
# Values from the package documentation of golang.org/x/mod/sumdb/note (note.go): the signer
# key "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz", its
# verifier key, and the signed note. Ed25519 is deterministic, so our signature must match.

GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_the_published_signed_note_is_reproduced_byte_for_byte() -> None:
    key = Ed25519PrivateKey.from_private_bytes(GO_SEED)
    assert _note.sign_note(GO_TEXT, key, "PeterNeumann") == GO_NOTE
    assert verifier_key(key.public_key(), "PeterNeumann") == GO_VKEY
    assert key_id("PeterNeumann", key.public_key()).hex() == "c74f20a3"
    name, public = parse_verifier_key(GO_VKEY)
    assert name == "PeterNeumann"
    assert raw(public) == raw(key.public_key())
    _note.verify_note(_note.parse_note(GO_NOTE), public, "PeterNeumann")
    with pytest.raises(CheckpointError, match="it needs origin, size and root"):
        parse_checkpoint(GO_NOTE)  # a note, but its text is not a checkpoint


# --- signing and reading -----------------------------------------------------------------------


def test_a_signed_checkpoint_reads_back_with_an_independent_reader() -> None:
    key = generate_key()
    note = sign_checkpoint(Checkpoint(size=1_000_000, root_hash=ROOT), key)
    assert note.startswith(f"{DEFAULT_ORIGIN}\n1000000\n{base64.b64encode(ROOT).decode()}\n\n")
    assert note.count("\n") == 5
    assert note.split("\n")[4].startswith(f"\u2014 {DEFAULT_ORIGIN} ")
    assert read_signed_checkpoint(note, key.public_key(), DEFAULT_ORIGIN) == {
        "origin": "payledger",
        "size": 1_000_000,
        "root": ROOT,
        "extensions": [],
    }
    got = verify_checkpoint(note, key.public_key())
    assert got == Checkpoint(size=1_000_000, root_hash=ROOT) == parse_checkpoint(note)
    assert verify_checkpoint(note.encode(), key.public_key(), origin="payledger") == got


@given(
    origin=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x2FFF, exclude_characters="+"),
        min_size=1,
        max_size=30,
    ).filter(lambda s: not any(c.isspace() for c in s)),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20),
        max_size=3,
    ),
)
def test_any_checkpoint_round_trips(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    checkpoint = Checkpoint(origin=origin, size=size, root_hash=root, extensions=tuple(extensions))
    note = sign_checkpoint(checkpoint, key)
    assert verify_checkpoint(note, key.public_key()) == checkpoint
    assert read_signed_checkpoint(note, key.public_key(), origin) == {
        "origin": origin,
        "size": size,
        "root": root,
        "extensions": extensions,
    }


def test_other_signatures_are_ignored_and_a_key_name_can_differ_from_the_origin() -> None:
    log_key, witness = generate_key(), generate_key()
    note = sign_checkpoint(Checkpoint(size=5, root_hash=ROOT), log_key, key_name="example.com/log")
    assert verify_checkpoint(note, log_key.public_key(), key_name="example.com/log").size == 5
    text = note[: note.index("\n\n") + 1]
    cosigned = note + _note.sign_note(text, witness, "witness.example").split("\n\n")[1]
    assert verify_checkpoint(cosigned, log_key.public_key(), key_name="example.com/log").size == 5
    assert verify_checkpoint(cosigned, witness.public_key(), key_name="witness.example").size == 5
    read_signed_checkpoint(cosigned, witness.public_key(), "witness.example")


# --- refusals: each one line -------------------------------------------------------------------


def refused(note: str | bytes, public_key: Ed25519PublicKey, **kwargs: str) -> str:
    with pytest.raises(CheckpointError) as info:
        verify_checkpoint(note, public_key, **kwargs)
    message = str(info.value)
    assert message
    assert "\n" not in message
    assert isinstance(info.value, LedgerError)
    return message


@pytest.fixture(scope="module")
def signed() -> tuple[str, Ed25519PrivateKey]:
    key = generate_key()
    return sign_checkpoint(Checkpoint(size=1234, root_hash=ROOT), key), key


def test_another_key_is_refused(signed: tuple[str, Ed25519PrivateKey]) -> None:
    note, _ = signed
    message = refused(note, generate_key().public_key())
    assert "signed by another key under the name 'payledger'" in message


def test_a_wrong_key_name_is_refused(signed: tuple[str, Ed25519PrivateKey]) -> None:
    note, key = signed
    assert "no signature under the key name 'other'" in refused(
        note, key.public_key(), key_name="other"
    )
    renamed = note.replace("\u2014 payledger ", "\u2014 other ")
    assert "no signature under the key name 'payledger'" in refused(renamed, key.public_key())
    assert "origin is 'payledger', not 'elsewhere'" in refused(
        note, key.public_key(), origin="elsewhere"
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n1234\n", "\n1235\n"),
        ("\n1234\n", "\n12340\n"),
        ("payledger\n1234", "payledgeR\n1234"),
        (base64.b64encode(ROOT).decode(), base64.b64encode(ROOT[::-1]).decode()),
        ("=\n\n", "=\nextension\n\n"),
    ],
)
def test_an_edited_note_is_refused(
    signed: tuple[str, Ed25519PrivateKey], old: str, new: str
) -> None:
    note, key = signed
    assert old in note
    message = refused(note.replace(old, new, 1), key.public_key())
    assert "does not verify" in message or "no signature" in message


def test_a_flipped_signature_bit_is_refused(signed: tuple[str, Ed25519PrivateKey]) -> None:
    note, key = signed
    head, line = note.rsplit("\u2014 payledger ", 1)
    blob = bytearray(base64.b64decode(line))
    for at in (4, 20, 67):
        bad = bytearray(blob)
        bad[at] ^= 1
        forged = f"{head}\u2014 payledger {base64.b64encode(bad).decode()}\n"
        assert "does not verify" in refused(forged, key.public_key())


def test_a_truncated_signature_is_refused(signed: tuple[str, Ed25519PrivateKey]) -> None:
    note, key = signed
    body = note[:-1]  # without the final newline
    assert "not valid base64" in refused(body[:-1] + "\n", key.public_key())
    assert "not valid base64" in refused(body[:-5] + "\n", key.public_key())
    assert "62 bytes, not 64" in refused(body[:-4] + "\n", key.public_key())
    assert "does not end with a newline" in refused(body, key.public_key())
    assert "no signature line" in refused(note[: note.index("\u2014")], key.public_key())
    assert "too short" in refused(body[: body.index("\u2014") + 12] + "AAA=\n", key.public_key())


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("payledger\n1234\n{root}\n", "no blank line"),
        ("payledger\n01234\n{root}\n\n{sig}", "tree size line '01234'"),
        ("payledger\n+1234\n{root}\n\n{sig}", "tree size line"),
        ("payledger\n 1234\n{root}\n\n{sig}", "tree size line"),
        ("payledger\n\u0661\u0662\n{root}\n\n{sig}", "tree size line"),
        ("payledger\n18446744073709551616\n{root}\n\n{sig}", "tree size line"),
        ("payledger\n1234\n{short}\n\n{sig}", "root hash line"),
        ("payledger\n1234\n{urlsafe}\n\n{sig}", "root hash line"),
        ("payledger\n1234\n{unpadded}\n\n{sig}", "root hash line"),
        ("payledger\n1234\n\n{sig}", "it needs origin, size and root"),
        ("\n1234\n{root}\n\n{sig}", "line 1 of the checkpoint is empty"),
        ("payledger\n1234\n{root}\n\n\n{sig}", "line 4 of the checkpoint is empty"),
        ("payledger\n1234\r\n{root}\n\n{sig}", "control character"),
        ("payledger\n1234\n{root}\n\n- payledger AAAAAAAA\n", "em dash"),
        ("payledger\n1234\n{root}\n\n\u2014 payledger\n", "no valid key name"),
        ("payledger\n1234\n{root}\n\n\u2014 pay+ledger AAAAAAAA\n", "no valid key name"),
        ("payledger\n1234\n{root}\n\n\u2014 payledger AAAAAAAA\n\n", "no signature line"),
    ],
)
def test_a_malformed_note_is_refused(
    signed: tuple[str, Ed25519PrivateKey], text: str, what: str
) -> None:
    note, key = signed
    root = base64.b64encode(ROOT).decode()
    fields = {
        "root": root,
        "sig": note.split("\n\n")[1],
        "short": base64.b64encode(ROOT[:31]).decode(),
        "urlsafe": base64.urlsafe_b64encode(b"\xff" * 32).decode(),
        "unpadded": root.rstrip("="),
    }
    message = refused(text.format(**fields), key.public_key())
    assert what in message, message
    with pytest.raises(CheckpointError):
        parse_checkpoint(text.format(**fields))


def test_bytes_that_are_not_utf8_are_refused(signed: tuple[str, Ed25519PrivateKey]) -> None:
    note, key = signed
    assert "not valid UTF-8" in refused(b"\xff" + note.encode(), key.public_key())


def test_signing_refuses_what_cannot_be_written() -> None:
    key = generate_key()
    for checkpoint, kwargs in (
        (Checkpoint(size=1, root_hash=ROOT[:31]), {}),
        (Checkpoint(size=-1, root_hash=ROOT), {}),
        (Checkpoint(size=2**64, root_hash=ROOT), {}),
        (Checkpoint(size=1, root_hash=ROOT, origin=""), {}),
        (Checkpoint(size=1, root_hash=ROOT, origin="a\nb"), {}),
        (Checkpoint(size=1, root_hash=ROOT, origin="my log"), {}),  # not a key name
        (Checkpoint(size=1, root_hash=ROOT, extensions=("",)), {}),
        (Checkpoint(size=1, root_hash=ROOT), {"key_name": "a+b"}),
    ):
        with pytest.raises(CheckpointError) as info:
            sign_checkpoint(checkpoint, key, **kwargs)
        assert "\n" not in str(info.value)
    spaced = sign_checkpoint(Checkpoint(size=1, root_hash=ROOT, origin="my log"), key, key_name="k")
    assert verify_checkpoint(spaced, key.public_key(), key_name="k").origin == "my log"


# --- keys --------------------------------------------------------------------------------------


def test_keygen_writes_a_private_pem_0600_and_a_public_pem(tmp_path: Path) -> None:
    private_path, public_path = write_keypair(tmp_path / "KEY")
    assert public_path == tmp_path / "KEY.pub"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert private_path.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")
    assert public_path.read_text().startswith("-----BEGIN PUBLIC KEY-----\n")
    private, public = load_private_key(private_path), load_public_key(public_path)
    assert raw(private.public_key()) == raw(public)
    note = sign_checkpoint(Checkpoint(size=3, root_hash=ROOT), private)
    assert verify_checkpoint(note, public).size == 3
    again = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    assert isinstance(again, Ed25519PrivateKey)


def test_keygen_does_not_replace_a_key(tmp_path: Path) -> None:
    write_keypair(tmp_path / "KEY")
    before = (tmp_path / "KEY").read_bytes()
    with pytest.raises(CheckpointError, match="already exists"):
        write_keypair(tmp_path / "KEY")
    assert (tmp_path / "KEY").read_bytes() == before
    (tmp_path / "OTHER.pub").write_text("x")
    with pytest.raises(CheckpointError, match=r"OTHER\.pub already exists"):
        write_keypair(tmp_path / "OTHER")
    assert not (tmp_path / "OTHER").exists()
    write_keypair(tmp_path / "KEY", overwrite=True)
    assert (tmp_path / "KEY").read_bytes() != before
    assert stat.S_IMODE((tmp_path / "KEY").stat().st_mode) == 0o600


def test_unusable_key_files_are_refused_in_one_line(tmp_path: Path) -> None:
    private_path, public_path = write_keypair(tmp_path / "KEY")
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    encrypted = tmp_path / "encrypted"
    encrypted.write_bytes(
        generate_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_private, ec_public = tmp_path / "ec", tmp_path / "ec.pub"
    ec_private.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ec_public.write_bytes(
        ec_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    cases = [
        (load_private_key, tmp_path / "missing", "cannot read"),
        (load_private_key, garbage, "not a PEM private key"),
        (load_private_key, public_path, "not a PEM private key"),
        (load_private_key, encrypted, "encrypted"),
        (load_private_key, ec_private, "not an Ed25519 private key"),
        (load_public_key, tmp_path / "missing", "cannot read"),
        (load_public_key, garbage, "not a PEM public key"),
        (load_public_key, private_path, "is a private key"),
        (load_public_key, ec_public, "not an Ed25519 public key"),
    ]
    for load, path, what in cases:
        with pytest.raises(CheckpointError) as info:
            load(path)
        assert what in str(info.value)
        assert "\n" not in str(info.value)


def test_verifier_keys_are_checked() -> None:
    key = generate_key().public_key()
    vkey = verifier_key(key, "example.com/log")
    name, public = parse_verifier_key(vkey)
    assert name == "example.com/log"
    assert raw(public) == raw(key)
    name_part, id_part, data_part = vkey.split("+", 2)
    wrong_id = f"{int(id_part, 16) ^ 1:08x}"
    wrong_type = base64.b64encode(b"\x02" + raw(key)).decode()
    for bad in (
        f"{name_part}+{wrong_id}+{data_part}",
        f"{name_part}+{id_part[:7]}+{data_part}",
        f"{name_part}+{id_part}+{wrong_type}",
        f"{name_part}+{id_part}+{data_part[:-4]}",
        f"x y+{id_part}+{data_part}",
        "garbage",
    ):
        with pytest.raises(CheckpointError):
            parse_verifier_key(bad)
    with pytest.raises(CheckpointError):
        verifier_key(key, "a+b")


def test_the_independent_reader_really_checks_signatures() -> None:
    key, other = generate_key(), generate_key()
    note = sign_checkpoint(Checkpoint(size=1, root_hash=ROOT), other)
    head, blob = note[:-1].rsplit(" ", 1)
    sig = base64.b64decode(blob)
    forged = key_id(DEFAULT_ORIGIN, key.public_key()) + sig[4:]
    forged_note = f"{head} {base64.b64encode(forged).decode()}\n"
    with pytest.raises(InvalidSignature):
        read_signed_checkpoint(forged_note, key.public_key(), DEFAULT_ORIGIN)
    assert "does not verify" in refused(forged_note, key.public_key())
