"""What a server-streaming `Watch…` RPC reads from: one bounded queue of events per watcher.

A job publishes each event (a state change, a progress record) to every watcher of it with
`put`, which never blocks the job: when a watcher's queue is full it is marked `lagged`, its
queue is dropped, and the watch re-reads what it missed from the database instead. `wake` is set
on every put so the watch can wait for the next event."""

from __future__ import annotations

import asyncio


class Watcher:
    def __init__(self, maxsize: int = 10_000):
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)
        self.lagged = False
        self.wake = asyncio.Event()

    def put(self, event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True
        self.wake.set()

    def drain(self) -> list:
        """Every queued event, oldest first."""
        events = []
        while not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events
