"""Run a frame sink (an encoder) in its own thread, so encoding overlaps the swap work."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class ThreadedSink:
    """Call ``write(*args)`` for each ``put(*args)`` on a worker thread, in order.

    The queue is bounded (``depth`` items) so a slow encoder applies back-pressure instead
    of buffering the whole video. An exception in the worker is raised again by the next
    ``put`` or by ``close``.
    """

    def __init__(self, write: Callable[..., Any], depth: int = 8, name: str = "encode") -> None:
        self._write = write
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # drain after a failure so put() never blocks forever
            try:
                self._write(*item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = exc

    def put(self, *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(args)

    def close(self) -> None:
        """Wait until everything queued is written; raise the worker's error if it had one."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if self._error is not None:
            raise self._error


class BackgroundIterator:
    """Run ``iterable`` on a worker thread, ``depth`` items ahead of the consumer.

    Used to overlap a stage that releases the GIL (MediaPipe tracking) with the next one
    (the networks). The worker's exception is raised in the consumer; ``close`` stops the
    worker early (the consumer was interrupted) and waits for it.
    """

    def __init__(self, iterable: Any, depth: int = 8, name: str = "stage") -> None:
        self._source = iterable
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put((True, item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            self._put((False, exc))
            return
        self._put((False, None))

    def __iter__(self) -> BackgroundIterator:
        return self

    def __next__(self) -> Any:
        ok, item = self._queue.get()
        if ok:
            return item
        self._stop.set()
        if item is None:
            raise StopIteration
        raise item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self._thread.join()
