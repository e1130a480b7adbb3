"""Recognizers lent out one at a time, first come, first served.

A :class:`~realtime.recognizer.Recognizer` must not run two frames at once, so the
server keeps a few of them (one per CPU core it may use) and lends each to one frame
at a time. Whoever has waited longest gets the next free one: a recognizer coming back
is handed straight to the oldest waiter, never to a newcomer, so a client that sends
its next frame the moment it has the last one's answer cannot crowd out the others.
With every client holding at most one frame in flight, this shares the CPU equally.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from typing import Generic, Iterator, Sequence, TypeVar

T = TypeVar("T")


class FairPool(Generic[T]):
    """``with pool.lease() as item:`` -- one item for the caller alone, FIFO among waiters."""

    def __init__(self, items: Sequence[T]) -> None:
        if not items:
            raise ValueError("a pool needs at least one item")
        self.items = list(items)
        self._free = list(items)
        self._waiters: deque[tuple[threading.Event, list[T]]] = deque()
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self.items)

    @property
    def waiting(self) -> int:
        """Callers waiting for an item now (frames queued for a recognizer)."""
        with self._lock:
            return len(self._waiters)

    @contextlib.contextmanager
    def lease(self) -> Iterator[T]:
        with self._lock:
            if self._free:
                item = self._free.pop()
                ready = None
            else:
                ready, slot = threading.Event(), []
                self._waiters.append((ready, slot))
        if ready is not None:
            ready.wait()
            item = slot[0]
        try:
            yield item
        finally:
            self._give_back(item)

    def _give_back(self, item: T) -> None:
        with self._lock:
            if self._waiters:
                ready, slot = self._waiters.popleft()
                slot.append(item)
                ready.set()
            else:
                self._free.append(item)
