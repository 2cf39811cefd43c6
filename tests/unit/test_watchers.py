"""servers.common.watchers.Watcher: events in order, and a full queue marks the watcher lagged
instead of blocking or dropping silently."""

from __future__ import annotations

from servers.common.watchers import Watcher


def test_events_come_out_in_order_and_wake_is_set():
    w = Watcher(maxsize=3)
    w.put("a")
    w.put("b")
    assert w.wake.is_set() and not w.lagged
    assert w.drain() == ["a", "b"] and w.drain() == []


def test_a_full_queue_marks_the_watcher_lagged():
    w = Watcher(maxsize=2)
    for event in "abc":
        w.put(event)
    assert w.lagged and w.drain() == ["a", "b"]
