"""Channel health: technical failure rates per channel over a sliding time window, and the
status change (``degraded``, back ``up``) a rate calls for, with hysteresis."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Literal

from projections.state import ChannelState

from .config import HealthConfig

__all__ = ["ChannelHealth"]


class _Window:
    __slots__ = ("failed", "samples")

    def __init__(self) -> None:
        self.samples: deque[tuple[float, bool]] = deque()
        self.failed = 0


class ChannelHealth:
    """Technical failure rates per channel over a sliding time window."""

    def __init__(self, config: HealthConfig) -> None:
        self.config = config
        self._windows: dict[str, _Window] = {}

    def observe(self, channel: str, at: datetime, failed: bool) -> None:
        """Count one attempt's outcome (``failed``: a technical failure)."""
        window = self._windows.get(channel)
        if window is None:
            window = self._windows[channel] = _Window()
        window.samples.append((at.timestamp(), failed))
        window.failed += failed

    def rate(self, channel: str, now: datetime) -> tuple[float, int]:
        """The technical failure rate and the number of attempts in the window ending now."""
        window = self._windows.get(channel)
        if window is None:
            return 0.0, 0
        samples = window.samples
        horizon = now.timestamp() - self.config.window_seconds
        while samples and samples[0][0] <= horizon:
            window.failed -= samples.popleft()[1]
        if not samples:
            return 0.0, 0
        return window.failed / len(samples), len(samples)

    def channels(self) -> list[str]:
        return sorted(self._windows)

    def verdict(
        self, state: ChannelState, now: datetime
    ) -> tuple[Literal["up", "degraded"], str] | None:
        """The status change the rate calls for, with its reason; ``None`` for none.

        Only ``up`` channels are degraded, and only channels this monitor degraded recover.
        """
        rate, n = self.rate(state.channel, now)
        reason = f"failure rate {rate:.2f} over last {n} attempts"
        if state.status == "up" and n >= self.config.min_samples and rate >= self.config.degrade_at:
            return "degraded", reason
        if (
            n >= self.config.recover_samples
            and state.status == "degraded"
            and state.reason.startswith("failure rate")
            and rate <= self.config.recover_at
        ):
            return "up", reason
        return None
