"""A small DOM for the report tests: :func:`parse` reads HTML (a file as written, or what
Chromium's ``--dump-dom`` serialised) into :class:`Node` trees with the standard library's
parser, so a test can find elements by tag, class and attribute and read their text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html.parser import HTMLParser

__all__ = ["Node", "parse"]

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"}
)  # fmt: skip


class Node:
    """An element: its tag, attributes, children (nodes and text) and parent."""

    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list[Node | str] = []

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs}>"

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        """The text of the element and its descendants, whitespace collapsed."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                elif child.tag not in ("style", "script", "title") or child is self:
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())

    def iter(self) -> Iterator[Node]:
        """This element and every element below it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(
        self,
        tag: str | None = None,
        *,
        cls: str | None = None,
        where: Callable[[Node], bool] | None = None,
        **attrs: str,
    ) -> list[Node]:
        """Elements below (and including) this one with ``tag``, class ``cls``, the
        attributes given (``data_position="4"`` means ``data-position="4"``) and ``where``."""
        return self._select(tag, cls, where, attrs)

    def find(self, tag: str | None = None, *, cls: str | None = None, **attrs: str) -> Node:
        """The one element :meth:`find_all` finds (an ``AssertionError`` otherwise)."""
        found = self._select(tag, cls, None, attrs)
        assert len(found) == 1, f"{len(found)} elements match {tag} {cls} {attrs}"
        return found[0]

    def _select(
        self,
        tag: str | None,
        cls: str | None,
        where: Callable[[Node], bool] | None,
        attrs: dict[str, str],
    ) -> list[Node]:
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag)
            and (cls is None or cls in n.classes)
            and all(n.attrs.get(k) == v for k, v in want.items())
            and (where is None or where(n))
        ]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str) -> Node:
    """The document's tree (its root is a ``#document`` node)."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
