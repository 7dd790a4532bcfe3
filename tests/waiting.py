"""Wait on a condition, never on the clock: the one polling helper of the suite."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 60.0, what: str = "the condition",
               *, every: float = 0.05) -> T:
    """Call `condition` until it returns something truthy, and return that; fail naming `what`
    (and the last value seen) after `timeout` seconds. Exceptions from `condition` propagate."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last value: {value!r})")
        time.sleep(every)
