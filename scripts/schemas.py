"""Write the JSON Schemas of the ``--json`` documents into ``replay/schemas/``::

    .venv/bin/python scripts/schemas.py

The test suite fails while a shipped schema differs from what this writes."""

from __future__ import annotations

from replay.schemas import DIRECTORY, DOCUMENTS, render


def main() -> None:
    for name in DOCUMENTS:
        path = DIRECTORY / f"{name}.schema.json"
        path.write_text(render(name), encoding="utf-8")
        print(path)


if __name__ == "__main__":
    main()
