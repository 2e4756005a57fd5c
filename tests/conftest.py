"""Shared test configuration: aiosqlite works on asyncio only, so anyio tests run there."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
