"""Background coroutines of the window (model loading, finishing a recording, an export), kept so that
closing the window can cancel them and a failure is logged instead of vanishing."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine

log = logging.getLogger(__name__)


class TaskSet:
    def __init__(self):
        self._tasks: set[asyncio.Future] = set()

    def spawn(self, coro: Coroutine) -> asyncio.Future:
        return self.track(asyncio.ensure_future(coro))

    def track(self, task: asyncio.Future) -> asyncio.Future:
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Future) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def __len__(self) -> int:
        return len(self._tasks)
