"""Exponential back-off, for every retry that waits longer after each failure."""

from __future__ import annotations


def retry_delay(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after the `failures`-th failure in a row: base, 2*base, 4*base ... cap."""
    return float(min(cap, base * 2 ** max(0, failures - 1)))
