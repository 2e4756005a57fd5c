"""The log's Merkle tree (CONTRACT section 8): published RFC 6962/9162 vectors, a plain
recursive reading of RFC 9162 sections 2.1.1-2.1.4 to check every root and proof against, the
stored/computed split of the NodeSource path, strict verifiers, and O(log n) reads."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import IntegrityError
from ledger.merkle import (
    DEFAULT_THRESHOLD,
    EMPTY_ROOT,
    ConsistencyProof,
    Frontier,
    InclusionProof,
    MemoryNodeSource,
    MerkleError,
    NodeId,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    merkle_root,
    root_plan,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

T = TypeVar("T")


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    async def main() -> T:
        return await fn(*args)

    return anyio.run(main, backend="asyncio")


# --- the reference: RFC 9162 sections 2.1.1 to 2.1.4, read literally ---------------------------


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def k_of(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    if not d:
        return sha(b"")
    if len(d) == 1:
        return sha(b"\x00" + d[0])
    k = k_of(len(d))
    return sha(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[tuple[bytes, str]]:
    """PATH(m, D[n]), each hash with the side it joins from."""
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), (ref_mth(d[k:]), "right")]
    return [*ref_path(m - k, d[k:]), (ref_mth(d[:k]), "left")]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[tuple[bytes, str]]:
    """SUBPROOF(m, D[n], b), each hash with its role in the proof."""
    if m == len(d):
        return [] if b else [(ref_mth(d), "start")]
    k = k_of(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), (ref_mth(d[k:]), "right")]
    return [*ref_subproof(m - k, d[k:], False), (ref_mth(d[:k]), "left")]


def ref_proof(m: int, d: Sequence[bytes]) -> list[tuple[bytes, str]]:
    """PROOF(m, D[n]); empty for the sizes with nothing to prove (0 and n)."""
    return [] if m in (0, len(d)) else ref_subproof(m, d, True)


def inclusion_shape(i: int, n: int) -> tuple[str, ...]:
    """What an inclusion verifier computes for (i, n): the side of each path hash."""
    return tuple(side for _, side in ref_path(i, [b""] * n))


def consistency_shape(m: int, n: int) -> tuple[object, ...]:
    """What a consistency verifier computes for (m, n): the role of each proof hash."""
    if m == 0:
        return ("from empty", n == 0)
    if m == n:
        return ("same",)
    return tuple(role for _, role in ref_proof(m, [b""] * n))


def leaves_for(count: int, salt: bytes = b"") -> list[bytes]:
    """Distinct 32-byte leaf inputs, like the events' chain hashes."""
    return [sha(salt + i.to_bytes(8, "big")) for i in range(count)]


# --- published vectors -----------------------------------------------------------------------
# Values from transparency-dev/merkle, proof/verify_test.go (the RFC 6962 test data that
# google/certificate-transparency also uses): eight leaves, the roots of the trees of sizes 1
# to 8, and audit paths and consistency proofs of some of them. Leaves there are 1-based in the
# inclusion vectors; here they are converted to 0-based leaf indexes.

VECTOR_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
VECTOR_INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
VECTOR_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_the_empty_tree_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle_root([]) == EMPTY_ROOT == Frontier().root()


@pytest.mark.parametrize("threshold", [0, 1, 2, DEFAULT_THRESHOLD])
def test_published_roots(threshold: int) -> None:
    source = MemoryNodeSource(VECTOR_LEAVES, threshold=threshold)
    for size, root in enumerate(VECTOR_ROOTS, 1):
        assert merkle_root(VECTOR_LEAVES[:size]).hex() == root
        assert run(tree_root, source, size).hex() == root
        assert ref_mth(VECTOR_LEAVES[:size]).hex() == root


@pytest.mark.parametrize("threshold", [0, 1, 2, DEFAULT_THRESHOLD])
@pytest.mark.parametrize(("index", "size", "path"), VECTOR_INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, path: list[str], threshold: int) -> None:
    source = MemoryNodeSource(VECTOR_LEAVES, threshold=threshold)
    proof = run(inclusion_proof, source, index, size)
    assert [h.hex() for h in proof.audit_path] == path
    assert proof.root_hash.hex() == VECTOR_ROOTS[size - 1]
    assert proof.event_hash == VECTOR_LEAVES[index]
    assert (proof.position, proof.leaf_index, proof.tree_size) == (index + 1, index, size)
    hashes = [bytes.fromhex(h) for h in path]
    root = bytes.fromhex(VECTOR_ROOTS[size - 1])
    assert verify_inclusion(VECTOR_LEAVES[index], index, size, hashes, root)
    for wrong in (
        (b"WrongLeaf", index, size, hashes, root),
        (VECTOR_LEAVES[index], index, size, hashes, EMPTY_ROOT),
        (VECTOR_LEAVES[index], index, size, hashes, SOME_HASH),
        (VECTOR_LEAVES[index], index, size, [*hashes, b""], root),
        (VECTOR_LEAVES[index], index, size, [*hashes, root], root),
        (VECTOR_LEAVES[index], index, size, [root, *hashes], root),
        (VECTOR_LEAVES[index], index, size * 2, hashes, root),
        (VECTOR_LEAVES[index], index + 1, size, hashes, root),
        (VECTOR_LEAVES[index], index - 1, size, hashes, root),
        (VECTOR_LEAVES[index], index ^ 2, size, hashes, root),
        (VECTOR_LEAVES[index], index, size // 2, hashes, root),
    ):
        assert not verify_inclusion(*wrong), wrong


@pytest.mark.parametrize("threshold", [0, 1, 2, DEFAULT_THRESHOLD])
@pytest.mark.parametrize(("old", "new", "path"), VECTOR_CONSISTENCY)
def test_published_consistency_proofs(old: int, new: int, path: list[str], threshold: int) -> None:
    source = MemoryNodeSource(VECTOR_LEAVES, threshold=threshold)
    proof = run(consistency_proof, source, old, new)
    assert [h.hex() for h in proof.proof] == path
    assert proof.old_root_hash.hex() == VECTOR_ROOTS[old - 1]
    assert proof.new_root_hash.hex() == VECTOR_ROOTS[new - 1]
    hashes = [bytes.fromhex(h) for h in path]
    r1, r2 = bytes.fromhex(VECTOR_ROOTS[old - 1]), bytes.fromhex(VECTOR_ROOTS[new - 1])
    assert verify_consistency(old, new, r1, r2, hashes)
    if not hashes:
        return
    for wrong in (
        (old - 1, new, r1, r2, hashes),
        (old + 1, new, r1, r2, hashes),
        (old ^ 2, new, r1, r2, hashes),
        (old, new * 2, r1, r2, hashes),
        (old, new // 2, r1, r2, hashes),
        (old, new, SOME_HASH, r2, hashes),
        (old, new, r1, SOME_HASH, hashes),
        (old, new, r2, r1, hashes),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*hashes, b""]),
        (old, new, r1, r2, [*hashes, r1]),
        (old, new, r1, r2, [*hashes, r2]),
        (old, new, r1, r2, [b"", *hashes]),
        (old, new, r1, r2, [r1, *hashes]),
        (old, new, r1, r2, [r2, *hashes]),
        (old, new, r1, r2, [hashes[0], *hashes]),
        (old, new, r1, r2, hashes[:-1]),
    ):
        assert not verify_consistency(*wrong), wrong


# --- strict verifiers: the cases the RFC's algorithms leave to the caller ----------------------


def test_inclusion_rejects_impossible_indexes_and_sizes() -> None:
    leaf = b"data"
    root = sha(b"\x00" + leaf)
    assert verify_inclusion(leaf, 0, 1, [], root)
    for index, size in ((0, 0), (1, 0), (1, 1), (2, 1), (-1, 1), (0, -1)):
        assert not verify_inclusion(leaf, index, size, [], root)
    assert not verify_inclusion(leaf, True, 2, [root], root)
    assert not verify_inclusion(leaf, 0, 1, [], root[:31])
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(leaf, 0, 1, [root], root)


def test_consistency_rules_for_trivial_sizes() -> None:
    r1, r2 = SOME_HASH, sha(b"other")
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, r2, [])
    assert verify_consistency(3, 3, r1, r1, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, r2, [])
    assert not verify_consistency(0, 5, r1, r2, [])  # the empty tree has one root
    assert not verify_consistency(0, 5, EMPTY_ROOT, r2, [r1])
    assert not verify_consistency(3, 3, r1, r2, [])
    assert not verify_consistency(3, 3, r1, r1, [r1])
    assert not verify_consistency(1, 0, r1, r2, [])  # time runs forward only
    assert not verify_consistency(2, 1, r1, r2, [r1])
    assert not verify_consistency(1, 2, r1, r2, [])
    assert not verify_consistency(-1, 2, r1, r2, [r1])
    assert not verify_consistency(1, 2, r1[:31], r2, [r1])


# --- every proof of random trees against the reference -----------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> tuple[int, int, int, int, int, bytes]:
    head = draw(st.integers(1, 160))
    n = draw(st.integers(1, head))
    return (
        head,
        n,
        draw(st.integers(0, n)),  # old size
        draw(st.integers(0, n - 1)),  # leaf index
        draw(st.integers(0, 3)),  # threshold
        draw(st.binary(max_size=8)),  # salt of the leaves
    )


def flipped(hashes: Sequence[bytes], at: int) -> list[bytes]:
    out = list(hashes)
    out[at] = bytes([out[at][0] ^ 0x10]) + out[at][1:]
    return out


@given(cases())
def test_inclusion_proofs_match_the_rfc_and_resist_alteration(
    case: tuple[int, int, int, int, int, bytes],
) -> None:
    head, n, _, i, threshold, salt = case
    leaves = leaves_for(head, salt)
    source = MemoryNodeSource(leaves, threshold=threshold)
    proof = run(inclusion_proof, source, i, n)
    reference = ref_path(i, leaves[:n])
    root = ref_mth(leaves[:n])
    assert proof.audit_path == tuple(h for h, _ in reference)
    assert (proof.root_hash, proof.event_hash) == (root, leaves[i])
    assert run(tree_root, source, n) == root
    path = list(proof.audit_path)
    assert verify_inclusion(leaves[i], i, n, path, root)
    for at in range(len(path)):
        assert not verify_inclusion(leaves[i], i, n, flipped(path, at), root)
    if path:
        assert not verify_inclusion(leaves[i], i, n, path[:-1], root)
    assert not verify_inclusion(leaves[i], i, n, [*path, root], root)
    assert not verify_inclusion(leaves[i], i, n, path, flipped([root], 0)[0])
    assert not verify_inclusion(leaves[i] + b"x", i, n, path, root)
    for other in range(n):
        if other != i:
            assert not verify_inclusion(leaves[i], other, n, path, root)
    for size in range(max(1, i - 2), 2 * n + 3):
        if size != n:
            # Only a size whose tree puts leaf i in the same place can pass: the signed
            # checkpoint, not the proof, is what fixes the size.
            same = size > i and inclusion_shape(i, size) == inclusion_shape(i, n)
            assert verify_inclusion(leaves[i], i, size, path, root) == same


@given(cases())
def test_consistency_proofs_match_the_rfc_and_resist_alteration(
    case: tuple[int, int, int, int, int, bytes],
) -> None:
    head, n, m, _, threshold, salt = case
    leaves = leaves_for(head, salt)
    source = MemoryNodeSource(leaves, threshold=threshold)
    proof = run(consistency_proof, source, m, n)
    old, new = ref_mth(leaves[:m]), ref_mth(leaves[:n])
    assert proof.proof == tuple(h for h, _ in ref_proof(m, leaves[:n]))
    assert (proof.old_root_hash, proof.new_root_hash) == (old, new)
    path = list(proof.proof)
    assert verify_consistency(m, n, old, new, path)
    for at in range(len(path)):
        assert not verify_consistency(m, n, old, new, flipped(path, at))
    if path:
        assert not verify_consistency(m, n, old, new, path[:-1])
    assert not verify_consistency(m, n, old, new, [*path, new])
    assert not verify_consistency(m, n, flipped([old], 0)[0], new, path)
    if 0 < m < n:  # from the empty tree, every root of size n > 0 extends it
        assert not verify_consistency(m, n, old, flipped([new], 0)[0], path)
        assert not verify_consistency(m, n, new, old, path)
    for m2 in range(0, min(n, 2 * m + 3) + 1):
        for n2 in range(max(m2, n - 3), n + 4):
            if (m2, n2) != (m, n):
                same = consistency_shape(m2, n2) == consistency_shape(m, n)
                assert verify_consistency(m2, n2, old, new, path) == same, (m2, n2)


# --- the frontier ------------------------------------------------------------------------------


@given(
    st.integers(0, 300),
    st.lists(st.integers(1, 40), max_size=40),
    st.integers(0, 4),
)
def test_frontier_chunks_give_the_same_tree_as_one_by_one(
    count: int, chunks: list[int], threshold: int
) -> None:
    leaves = leaves_for(count)
    one, chunked = Frontier(), Frontier()
    singly: list[tuple[NodeId, bytes]] = []
    for leaf in leaves:
        singly += one.append([leaf], threshold=threshold)
    together: list[tuple[NodeId, bytes]] = []
    at = 0
    for size in [*chunks, count]:
        together += chunked.append(leaves[at : at + size], threshold=threshold)
        at += size
    assert chunked.size == one.size == count
    assert chunked == one
    assert chunked.root() == one.root() == ref_mth(leaves)
    assert together == singly
    assert len({node for node, _ in singly}) == len(singly)  # each reported once
    expected = {
        NodeId(level, index): ref_mth(leaves[index << level : (index + 1) << level])
        for level in range(threshold, count.bit_length())
        for index in range(count >> level)
    }
    assert dict(singly) == expected
    assert Frontier.from_bytes(one.to_bytes()) == one
    assert [node for node, _ in one.nodes()] == [
        NodeId(level, ((count >> level) - 1))
        for level in range(count.bit_length() - 1, -1, -1)
        if count >> level & 1
    ]
    assert all(ref_mth(leaves[n.start : n.stop]) == h for n, h in one.nodes())


def test_frontier_serialisation_is_checked() -> None:
    frontier = Frontier()
    frontier.append(leaves_for(5))
    data = frontier.to_bytes()
    assert len(data) == 8 + 2 * 32
    for bad in (b"", data[:-1], data + b"\x00", b"\x00" * 7 + b"\x05" + data[8:40]):
        with pytest.raises(MerkleError):
            Frontier.from_bytes(bad)
    copy = frontier.copy()
    copy.append([b"x"])
    assert frontier.size == 5
    assert copy.size == 6


# --- plans: what a backend reads ---------------------------------------------------------------


def check_plan_bounds(nodes: Sequence[NodeId], ranges: Sequence[tuple[int, int]], n: int) -> None:
    threshold = DEFAULT_THRESHOLD
    assert len(nodes) <= 2 * max(1, n.bit_length()) + 2
    assert len(ranges) <= 2
    assert sum(hi - lo for lo, hi in ranges) <= 2 << threshold
    for lo, hi in ranges:
        assert 0 <= lo < hi <= n
    for node in nodes:
        assert node.level >= threshold
        assert node.stop <= n


@given(st.integers(1, 10**12), st.data())
def test_plans_read_few_nodes_and_at_most_two_small_leaf_ranges(
    n: int, data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, n - 1))
    m = data.draw(st.integers(0, n))
    for plan in (root_plan(n), inclusion_plan(i, n), consistency_plan(m, n)):
        check_plan_bounds(plan.nodes, plan.leaf_ranges, n)


def test_plan_arguments_are_checked() -> None:
    for bad in (
        lambda: inclusion_plan(5, 5),
        lambda: inclusion_plan(-1, 5),
        lambda: consistency_plan(6, 5),
        lambda: root_plan(-1),
        lambda: root_plan(4, threshold=-1),
        lambda: root_plan(True),
    ):
        with pytest.raises(MerkleError):
            bad()


def test_requests_outside_the_log_are_refused_in_one_line() -> None:
    source = MemoryNodeSource(leaves_for(10))
    for call, args in (
        (inclusion_proof, (10,)),
        (inclusion_proof, (0, 11)),
        (tree_root, (11,)),
        (consistency_proof, (3, 11)),
        (consistency_proof, (4, 3)),
    ):
        with pytest.raises(MerkleError) as info:
            run(call, source, *args)
        assert "\n" not in str(info.value)
        assert str(info.value)
    with pytest.raises(MerkleError, match="position 11 is not in the tree of size 10"):
        run(inclusion_proof, source, 10)


class CountingSource:
    """A NodeSource that counts what the Merkle layer asks of it."""

    def __init__(self, inner: MemoryNodeSource) -> None:
        self.inner = inner
        self.node_calls = self.node_ids = self.leaf_calls = self.leaves_read = 0

    @property
    def size(self) -> int:
        return self.inner.size

    @property
    def threshold(self) -> int:
        return self.inner.threshold

    async def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        self.node_calls += 1
        self.node_ids += len(ids)
        return await self.inner.nodes(ids)

    async def leaves(self, ranges: Sequence[tuple[int, int]]) -> Sequence[Sequence[bytes]]:
        self.leaf_calls += 1
        got = await self.inner.leaves(ranges)
        self.leaves_read += sum(len(r) for r in got)
        return got


@pytest.fixture(scope="module")
def million() -> MemoryNodeSource:
    return MemoryNodeSource(i.to_bytes(32, "big") for i in range(1_000_000))


def test_a_million_leaves_need_logarithmic_reads(million: MemoryNodeSource) -> None:
    n = million.size
    assert n == 1_000_000
    assert len(million.stored) < n // 30  # about n / 2**(threshold - 1) rows
    log_n = math.ceil(math.log2(n))
    calls: list[tuple[Callable[..., Awaitable[object]], tuple[int, ...]]] = [
        (tree_root, (n,)),
        (tree_root, (999_999,)),
        (tree_root, (777_777,)),
    ]
    for i in (0, 1, 63, 64, 500_000, 777_776, 999_999):
        calls.append((inclusion_proof, (i,)))
        if i < 999_937:
            calls.append((inclusion_proof, (i, 999_937)))
    for m in (0, 1, 2, 64, 65, 262_144, 333_333, 999_999, n):
        calls += [(consistency_proof, (m,))]
    for call, args in calls:
        counting = CountingSource(million)
        run(call, counting, *args)
        assert counting.node_calls <= 1, (call, args)
        assert counting.leaf_calls <= 1, (call, args)
        assert counting.node_ids <= 2 * log_n + 2, (call, args, counting.node_ids)
        assert counting.leaves_read <= 2 << million.threshold, (call, args)


def test_a_proof_from_a_million_leaves_verifies(million: MemoryNodeSource) -> None:
    proof = run(inclusion_proof, million, 123_456, 999_999)
    root = run(tree_root, million, 999_999)
    assert verify_inclusion((123_456).to_bytes(32, "big"), 123_456, 999_999, proof.audit_path, root)
    step = run(consistency_proof, million, 654_321)
    assert step.new_root_hash == million.frontier.root()
    assert verify_consistency(654_321, million.size, step.old_root_hash, root, step.proof) is False
    assert verify_consistency(
        654_321, million.size, step.old_root_hash, million.frontier.root(), step.proof
    )


# --- a store whose stored nodes were altered ----------------------------------------------------


class TamperedSource(MemoryNodeSource):
    def __init__(self, leaves: list[bytes], drop: NodeId | None, change: NodeId | None) -> None:
        super().__init__(leaves, threshold=2)
        self.drop, self.change = drop, change

    async def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        got = dict(await super().nodes(ids))
        if self.drop is not None:
            got.pop(self.drop, None)
        if self.change is not None and self.change in got:
            got[self.change] = sha(b"forged")
        return got


def test_missing_or_altered_stored_nodes_are_integrity_errors() -> None:
    leaves = leaves_for(40)
    with pytest.raises(IntegrityError, match="level 3, index 1 is missing"):
        run(inclusion_proof, TamperedSource(leaves, NodeId(3, 1), None), 0)
    # A forged node that the root and the path both use gives a proof that still verifies
    # against a forged root; one used by the path only is caught before it leaves the store.
    with pytest.raises(IntegrityError, match="does not verify"):
        run(inclusion_proof, TamperedSource(leaves, None, NodeId(2, 4)), 20, 36)


class RewrittenSource(MemoryNodeSource):
    """A store whose event at one leaf was rewritten (chain hash and all), nodes left intact."""

    def __init__(self, leaves: list[bytes], rewritten: int) -> None:
        super().__init__(leaves, threshold=2)
        self.rewritten = rewritten

    async def leaves(self, ranges: Sequence[tuple[int, int]]) -> Sequence[Sequence[bytes]]:
        got = [list(r) for r in await super().leaves(ranges)]
        for (lo, hi), values in zip(ranges, got, strict=True):
            if lo <= self.rewritten < hi:
                values[self.rewritten - lo] = sha(b"rewritten")
        return got


def test_a_rewritten_event_under_stored_nodes_gives_no_proof() -> None:
    leaves = leaves_for(42)  # blocks of 4 leaves: [40, 42) is the partial one
    with pytest.raises(IntegrityError, match="does not verify"):
        run(inclusion_proof, RewrittenSource(leaves, 13), 13)
    # In the last partial block nothing stored covers it: the proof verifies, but against a
    # root that is not the one a checkpoint of the original log holds.
    proof = run(inclusion_proof, RewrittenSource(leaves, 41), 41)
    assert proof.root_hash != ref_mth(leaves)


# --- the JSON shape (CONTRACT section 8) -------------------------------------------------------


def test_proofs_round_trip_through_the_contract_json() -> None:
    source = MemoryNodeSource(leaves_for(21))
    inc = run(inclusion_proof, source, 6, 20)
    doc = inc.to_dict()
    assert list(doc) == [
        "position",
        "tree_size",
        "leaf_index",
        "event_hash",
        "root_hash",
        "audit_path",
    ]
    assert doc["position"] == 7
    assert doc["leaf_index"] == 6
    assert doc["tree_size"] == 20
    assert doc["event_hash"] == leaves_for(21)[6].hex()
    assert InclusionProof.from_dict(doc) == inc
    con = run(consistency_proof, source, 7, 21)
    doc2 = con.to_dict()
    assert list(doc2) == ["old_size", "new_size", "old_root_hash", "new_root_hash", "proof"]
    assert ConsistencyProof.from_dict(doc2) == con
    assert all(h == h.lower() and len(h) == 64 for h in doc2["proof"])


@pytest.mark.parametrize(
    "change",
    [
        {"position": 8},
        {"position": True},
        {"tree_size": 6},
        {"leaf_index": -1},
        {"leaf_index": "6"},
        {"event_hash": "AB" * 32},
        {"root_hash": "ab" * 31},
        {"audit_path": "ab" * 32},
        {"audit_path": ["zz" * 32]},
        {"extra": 1},
    ],
)
def test_inclusion_json_is_read_strictly(change: dict[str, object]) -> None:
    doc = run(inclusion_proof, MemoryNodeSource(leaves_for(20)), 6).to_dict()
    with pytest.raises(MerkleError) as info:
        InclusionProof.from_dict({**doc, **change})
    assert str(info.value).startswith("inclusion proof: ")
    assert "\n" not in str(info.value)
    del doc["audit_path"]
    with pytest.raises(MerkleError, match="missing field 'audit_path'"):
        InclusionProof.from_dict(doc)


def test_consistency_json_is_read_strictly() -> None:
    doc = run(consistency_proof, MemoryNodeSource(leaves_for(20)), 6).to_dict()
    changes: list[dict[str, object]] = [
        {"old_size": 21},
        {"new_size": 1.5},
        {"proof": [1]},
        {"more": []},
    ]
    for change in changes:
        with pytest.raises(MerkleError, match=r"^consistency proof: "):
            ConsistencyProof.from_dict({**doc, **change})
    with pytest.raises(MerkleError, match="expected a JSON object"):
        ConsistencyProof.from_dict([doc])


@pytest.mark.parametrize("threshold", [0, 2, 3])
def test_every_small_tree_matches_the_reference(threshold: int) -> None:
    """Every (leaf, size) and (old, new) pair up to 33 leaves, through a 40-leaf store."""
    leaves = leaves_for(40, b"small")
    source = MemoryNodeSource(leaves, threshold=threshold)

    async def main() -> None:
        for n in range(1, 34):
            root = ref_mth(leaves[:n])
            assert await tree_root(source, n) == root
            for i in range(n):
                proof = await inclusion_proof(source, i, n)
                assert list(proof.audit_path) == [h for h, _ in ref_path(i, leaves[:n])]
            for m in range(n + 1):
                step = await consistency_proof(source, m, n)
                assert list(step.proof) == [h for h, _ in ref_proof(m, leaves[:n])]
                assert step.old_root_hash == ref_mth(leaves[:m])

    anyio.run(main, backend="asyncio")
