"""The public API is what each package root and public module lists in ``__all__``: sorted,
complete and importable, so a user can rely on it and a reader can find it."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

PACKAGES = ("ledger", "projections", "causes", "gateway", "replay")


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    if name.isupper():
        return 0, name
    return (1 if name[:1].isupper() else 2), name


def _public_modules() -> list[ModuleType]:
    modules = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules.append(package)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if any(part.startswith("_") for part in info.name.split(".")[1:]):
                continue
            if info.name.startswith("replay.commands."):
                continue  # command modules are found by the CLI, not imported by users
            modules.append(importlib.import_module(info.name))
    return modules


@pytest.mark.parametrize("module", _public_modules(), ids=lambda m: m.__name__)
def test_every_public_module_declares_a_sorted_all(module: ModuleType) -> None:
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module.__name__} has no __all__"
    assert list(exported) == sorted(exported, key=_isort_key), f"{module.__name__}.__all__ order"
    for name in exported:
        assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name!r}"


def test_contract_entry_points_are_exported() -> None:
    """CONTRACT section 6: what payment services import."""
    import ledger
    import ledger.events

    for name in ("open_store", "ConcurrencyError", "LedgerError"):
        assert name in ledger.__all__
    assert issubclass(ledger.ConcurrencyError, ledger.LedgerError)
    for name in ledger.events.CATALOGUE:
        assert name in ledger.events.__all__, name


@pytest.mark.parametrize("name", PACKAGES)
def test_no_exported_name_is_shadowed_by_a_submodule(name: str) -> None:
    """Importing a submodule binds its name on the package: an exported function named like a
    module of its package would turn into that module once the module is imported."""
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
        if not info.name.endswith(".__main__"):
            importlib.import_module(info.name)
    for exported in package.__all__:
        value = getattr(package, exported)
        assert not isinstance(value, ModuleType), f"{name}.{exported} is the module {value!r}"
