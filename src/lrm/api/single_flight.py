"""One read at a time for what many requests ask for at the same moment.

When the report port opens (a just-started server, a failover), every client's first request
finds nothing in memory at once: the same token to check, the data version and its reference
to read. Without this each of them did the read itself, in a thread of its own: 50 clients
meant 50 token checks on new database connections, queued in front of the first answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    def __init__(self) -> None:
        self._calls: dict[K, tuple[Hashable, asyncio.Future[T]]] = {}

    async def run(self, key: K, tag: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """The result of `call()`, or of the call for `key` already running under the same
        `tag` on this event loop. A running call with another tag (one begun before a write
        it must not miss, say) is not joined: this caller starts its own."""
        tag = (tag, asyncio.get_running_loop())
        entry = self._calls.get(key)
        if entry is None or entry[0] != tag or entry[1].done():
            future = asyncio.ensure_future(call())
            entry = (tag, future)
            self._calls[key] = entry
            future.add_done_callback(lambda _: self._forget(key, entry))
        # shield: a waiter whose client went away must not cancel the call the others await.
        return await asyncio.shield(entry[1])

    def _forget(self, key: K, entry: tuple[Hashable, asyncio.Future[T]]) -> None:
        if self._calls.get(key) is entry:
            del self._calls[key]
        if not entry[1].cancelled():
            entry[1].exception()  # retrieved: every waiter may have gone

    def __len__(self) -> int:
        """Calls running."""
        return len(self._calls)
