"""realtime.web.pool: each item to one caller at a time, handed to waiters in arrival order."""

from __future__ import annotations

import threading
import time

import pytest

from realtime.web.pool import FairPool

WAIT_S = 60  # a generous bound on waiting for another thread's step (an event, not a deadline)


def wait_until(cond) -> None:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < WAIT_S, "another thread never got there"
        time.sleep(0.001)


def test_waiters_get_the_item_in_arrival_order():
    pool = FairPool(["rec"])
    order: list[str] = []
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with pool.lease():
            held.set()
            release.wait()

    def waiter(name: str) -> None:
        with pool.lease() as item:
            assert item == "rec"
            order.append(name)

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(WAIT_S)
    threads = []
    for i, name in enumerate("BCDE"):
        t = threading.Thread(target=waiter, args=(name,))
        t.start()
        threads.append(t)
        wait_until(lambda: pool.waiting == i + 1)
    release.set()
    for t in [first, *threads]:
        t.join(WAIT_S)
    assert order == list("BCDE")
    assert pool.waiting == 0


def test_no_item_is_used_by_two_callers_at_once():
    items = [{"busy": False, "uses": 0} for _ in range(2)]
    pool = FairPool(items)
    clashes = []

    def work() -> None:
        for _ in range(200):
            with pool.lease() as item:
                if item["busy"]:
                    clashes.append(item)
                item["busy"] = True
                item["uses"] += 1
                time.sleep(0)
                item["busy"] = False

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert not clashes
    assert sum(i["uses"] for i in items) == 6 * 200
    assert pool.waiting == 0


def test_an_item_comes_back_after_an_error():
    pool = FairPool(["only"])
    with pytest.raises(RuntimeError):
        with pool.lease():
            raise RuntimeError("frame failed")
    with pool.lease() as item:
        assert item == "only"


def test_an_empty_pool_is_refused():
    with pytest.raises(ValueError):
        FairPool([])
