"""Tuning knobs for frame sources, kept apart from the spec so a CLI or app can build them from flags."""

import random
from dataclasses import dataclass

from .errors import SourceError


@dataclass(frozen=True)
class SourceConfig:
    """How a source buffers, times out and reconnects.

    buffer_size: frames held between the reader thread and the consumer. Files and images block when it is
        full (nothing is lost); live sources drop the oldest frame (low latency beats completeness).
    open_timeout_s, read_timeout_s: FFmpeg limits for network streams, so a dead URL fails in seconds
        instead of hanging.
    open_attempts: tries to open a network stream before open_source gives up (a typo should fail at once).
    reconnect_attempts: tries to get a dropped network stream or webcam back (None: forever, 0: never).
        Files never reconnect: their end is the end.
    reconnect_backoff_s, reconnect_max_backoff_s: the wait before the first retry, doubled after each
        failed one up to the maximum (a camera that reboots is back within a minute or two; a long cap
        would leave it unused for that long after it came back).
    reconnect_jitter: up to this fraction of each wait is taken off at random, so the cameras of one site
        that dropped together do not all knock at the same instant.
    """

    buffer_size: int = 4
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    open_attempts: int = 1
    reconnect_attempts: int | None = None
    reconnect_backoff_s: float = 1.0
    reconnect_max_backoff_s: float = 30.0
    reconnect_jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.buffer_size < 1:
            raise SourceError(f"buffer_size must be at least 1, got {self.buffer_size}")
        if self.open_attempts < 1:
            raise SourceError(f"open_attempts must be at least 1, got {self.open_attempts}")
        if self.reconnect_attempts is not None and self.reconnect_attempts < 0:
            raise SourceError(f"reconnect_attempts must be >= 0 or None, got {self.reconnect_attempts}")
        for name in ("open_timeout_s", "read_timeout_s", "reconnect_backoff_s", "reconnect_max_backoff_s"):
            if not getattr(self, name) > 0:
                raise SourceError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.reconnect_jitter < 1:
            raise SourceError(f"reconnect_jitter must be in [0, 1), got {self.reconnect_jitter}")

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before reconnect attempt `attempt` (1-based): exponential, capped, minus jitter."""
        delay = min(self.reconnect_backoff_s * 2 ** min(attempt - 1, 64), self.reconnect_max_backoff_s)
        return delay * (1 - self.reconnect_jitter * (rng or random).random())
