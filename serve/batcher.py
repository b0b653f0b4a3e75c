"""Dynamic batching: concurrent requests to one model share one onnxruntime call.

One worker per model takes requests from a bounded queue and runs them in a thread of its own
(onnxruntime releases the GIL, so the event loop keeps serving meanwhile). The rule for when to run:

- The model is idle and a request arrives: run it at once. Waiting for company would only add
  latency, since nobody else is asking.
- A call is in flight: requests queue up. When it ends, the worker takes the queued requests, and
  only if they come to fewer than ``max_batch`` rows does it wait for more, until the oldest has
  waited ``max_delay`` seconds in all. Under load the oldest has usually waited a whole call
  already, so the next call starts straight away with everything that arrived meanwhile.

Each request gets back exactly its own rows. A full queue is refused at once (``QueueFull``) rather
than queued without bound; a request whose caller gave up (timeout, disconnect) is skipped.
"""

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


class QueueFull(Exception):
    """The model's queue holds max_queue requests already."""


class InferenceError(Exception):
    """onnxruntime failed on a batch."""


@dataclass(eq=False)  # compared by identity: removing one from the queue must not compare arrays
class Pending:
    batch: np.ndarray
    future: asyncio.Future
    arrived: float


class Batcher:
    def __init__(self, model, max_batch: int, max_delay: float, max_queue: int, metrics):
        self.model = model
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.max_queue = max_queue
        self.metrics = metrics
        self._queue = collections.deque()
        self._arrival = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"infer-{model.name}")
        self._worker = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.model.name}")

    async def stop(self) -> None:
        """Called after the server has answered every request in flight."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)

    @property
    def full(self) -> bool:
        return len(self._queue) >= self.max_queue

    async def infer(self, batch: np.ndarray) -> dict:
        """``{output name: rows}`` for this request's rows; QueueFull when the queue is full."""
        if self.full:
            raise QueueFull()
        pending = Pending(batch, asyncio.get_running_loop().create_future(), time.perf_counter())
        self._queue.append(pending)
        self.metrics.queue_depth.labels(self.model.name).set(len(self._queue))
        self._arrival.set()
        try:
            return await pending.future
        except asyncio.CancelledError:  # a timeout: free its place in the queue at once
            if pending in self._queue:
                self._queue.remove(pending)
                self.metrics.queue_depth.labels(self.model.name).set(len(self._queue))
            raise

    def _queued_rows(self) -> int:
        return sum(len(p.batch) for p in self._queue if not p.future.done())

    async def _gather(self) -> None:
        """After a call: wait for more requests until max_batch rows or the oldest one's deadline."""
        deadline = self._queue[0].arrived + self.max_delay
        while self._queued_rows() < self.max_batch:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), left)
            except TimeoutError:
                return

    def _take(self) -> list:
        taken, rows = [], 0
        while self._queue:
            pending = self._queue[0]
            if pending.future.done():  # its caller gave up
                self._queue.popleft()
                continue
            if taken and rows + len(pending.batch) > self.max_batch:
                break
            taken.append(self._queue.popleft())
            rows += len(pending.batch)
        self.metrics.queue_depth.labels(self.model.name).set(len(self._queue))
        return taken

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._queue:
                await self._gather()
            else:
                self._arrival.clear()
                await self._arrival.wait()  # idle: whatever arrives runs at once
            taken = self._take()
            if taken:
                await self._run(loop, taken)

    async def _run(self, loop, taken: list) -> None:
        started = time.perf_counter()
        for pending in taken:
            self.metrics.queue_time.labels(self.model.name).observe(started - pending.arrived)
        batch = taken[0].batch if len(taken) == 1 else np.concatenate([p.batch for p in taken])
        self.metrics.batch_size.labels(self.model.name).observe(len(batch))
        try:
            outputs = await loop.run_in_executor(self._executor, self.model.run, batch)
        except Exception as exc:  # onnxruntime's own failure: every caller in the batch learns it
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            for pending in taken:
                if not pending.future.done():
                    pending.future.set_exception(InferenceError(f"inference failed ({type(exc).__name__}: {first})"))
            return
        start = 0
        for pending in taken:
            stop = start + len(pending.batch)
            if not pending.future.done():
                pending.future.set_result({name: out[start:stop] for name, out in zip(self.model.output_names, outputs)})
            start = stop
