"""``payledger keygen -o KEY``: a new Ed25519 key pair for signing checkpoints (CONTRACT
section 8): KEY holds the private key (unencrypted PKCS#8 PEM, mode 0600), KEY.pub the public
key (SubjectPublicKeyInfo PEM). Neither file may exist: a key is never replaced. Needs no
store."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.checkpoint import (
    DEFAULT_ORIGIN,
    key_id,
    load_public_key,
    verifier_key,
    write_keypair,
)

from ..documents import KeygenDocument
from ._common import add_command, console, print_json
from ._vlog import origin_name


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "keygen",
        "write a new Ed25519 key pair for signing checkpoints: KEY (private, mode 0600) and "
        "KEY.pub (public); never replaces a file",
        run,
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="KEY",
        required=True,
        help="the private key's file (PEM, mode 0600); the public key goes to KEY.pub; "
        "neither may exist yet",
    )
    parser.add_argument(
        "--origin",
        metavar="NAME",
        type=origin_name,
        default=DEFAULT_ORIGIN,
        help="the origin of the checkpoints this key will sign, which is also its key name: "
        f"the key id and verifier key printed are for it (default: {DEFAULT_ORIGIN})",
    )


async def run(args: argparse.Namespace) -> int:
    private, public = write_keypair(args.output)
    key = load_public_key(public)
    doc = KeygenDocument(
        private_key=str(private),
        public_key=str(public),
        key_name=args.origin,
        key_id=key_id(args.origin, key).hex(),
        verifier_key=verifier_key(key, args.origin),
    )
    if args.json:
        print_json(doc)
        return 0
    console.print(
        f"wrote {doc.private_key} (Ed25519 private key, mode 0600) and {doc.public_key}",
        markup=False,
    )
    console.print(f"key {doc.key_name}+{doc.key_id}", markup=False)
    console.print(f"verifier key {doc.verifier_key}", markup=False)
    console.print(
        f"keep {doc.private_key} away from the store; give {doc.public_key} to auditors",
        markup=False,
    )
    return 0
