"""Dynamic batching: concurrent requests to one model share one onnxruntime call.

Each model has a thread of its own that runs its onnxruntime calls (onnxruntime releases the GIL, so
the event loop keeps serving meanwhile), fed through a plain queue: a ThreadPoolExecutor and its
future wrapping cost about 20 us more per call, as much as a small model's whole call. The rule for
when to run:

- The model is idle and a request arrives: the request goes straight to the thread, without a
  detour through the batching task. Waiting for company would only add latency, since nobody else
  is asking.
- A call is in flight: requests queue up. When it ends, the worker takes the queued requests. It
  waits for more only while fewer rows are queued than the largest of the last few calls took
  (never past ``max_batch`` rows, nor past the oldest request having waited ``max_delay`` seconds
  in all): up to that many are likely on their way, as the answers just sent bring their clients
  back. Waiting for more than have been seen lately would only add latency: a closed loop of N
  clients never sends more than N requests at once.

When a request is the only one the server has in flight (received and not yet answered), a call
predicted to be short (its rows times the model's recent seconds per row under ``INLINE_BELOW_S``)
runs on the event loop itself instead: there is nothing to batch with and nothing to serve
meanwhile, and handing the call to the thread and back costs two thread switches, the GIL changing
hands and a wake-up of the loop, as much as a small model's call. With other requests in flight,
calls go to the thread, so that requests keep arriving, and queueing, while one runs: that is what
batching and the bounded queue need.

With several instances (``instance_group`` in a repository's config.pbtxt, or ``--instances``), up
to that many calls run at once, each on an instance's own session and thread; "idle" then means
that an instance is free.

Each request gets back exactly its own rows. A full queue is refused at once (``QueueFull``) rather
than queued without bound; a request whose caller gave up (timeout, disconnect) is skipped.
"""

import asyncio
import collections
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from zoo.errors import first_line
from zoo.serve.connections import requests_in_flight


INLINE_BELOW_S = 0.0005  # a call predicted shorter than this runs on the event loop (see above)


class QueueFull(Exception):
    """The model's queue holds max_queue requests already."""


class InferenceError(Exception):
    """onnxruntime failed on a batch."""


@dataclass(eq=False)  # compared by identity: removing one from the queue must not compare arrays
class Pending:
    batch: np.ndarray
    future: asyncio.Future
    arrived: float


def _settle(future: asyncio.Future, outputs, exc) -> None:
    if not future.done():
        future.set_exception(exc) if exc is not None else future.set_result(outputs)


class InferenceThreads:
    """One thread per instance, each running its own ``run(batch)`` for the event loop, one call at
    a time; a call goes to whichever thread is free."""

    def __init__(self, runs: list, name: str):
        self._jobs = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, args=(run,), name=f"{name}-{i}", daemon=True)
                         for i, run in enumerate(runs)]
        for thread in self._threads:
            thread.start()

    def call(self, batch) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, batch))
        return future

    def _serve(self, run) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, batch = job
            started = time.perf_counter()
            try:
                outputs, exc = run(batch), None
            except Exception as error:  # onnxruntime's own failure: the caller learns it
                outputs, exc = None, error
            # The call's own seconds, measured here: what the loop sees also holds its own delays.
            loop.call_soon_threadsafe(_settle, future, (outputs, time.perf_counter() - started), exc)

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


class Batcher:
    def __init__(self, model, max_queue: int, metrics):
        self.model = model
        self.max_batch = model.serving.max_batch
        self.max_delay = model.serving.max_delay_ms / 1000
        self.instances = model.serving.instances
        self.max_queue = max_queue
        # The labelled children, looked up once: labels() takes a lock and a dict lookup each time.
        self._queue_depth = metrics.queue_depth.labels(model.name)
        self._queue_time = metrics.queue_time.labels(model.name)
        self._batch_size = metrics.batch_size.labels(model.name)
        self._queue = collections.deque()
        self._arrival = asyncio.Event()
        self._thread = InferenceThreads([model.runner(i) for i in range(self.instances)], f"infer-{model.name}")
        self._inline = model.runner(0) if self.instances == 1 else None
        self._seconds_per_row = _time_one_row(model)  # then an average that follows the recent calls
        self._worker = None
        self._calls = set()  # batches handed to spare instances, still running
        self._running = 0  # calls in flight (from the batching task or the idle fast path)
        self._recent_rows = collections.deque([1], maxlen=8)  # rows in each of the last calls

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.model.name}")

    async def stop(self) -> None:
        """Called after the server has answered every request in flight."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, *self._calls, return_exceptions=True)
        self._thread.stop()

    @property
    def full(self) -> bool:
        return len(self._queue) >= self.max_queue

    async def infer(self, batch: np.ndarray) -> dict:
        """``{output name: rows}`` for this request's rows; QueueFull when the queue is full."""
        if self.full:
            raise QueueFull()
        if self._running < self.instances and not self._queue:
            return await self._run_alone(batch)
        pending = Pending(batch, asyncio.get_running_loop().create_future(), time.perf_counter())
        self._queue.append(pending)
        self._queue_depth.set(len(self._queue))
        self._arrival.set()
        try:
            return await pending.future
        except asyncio.CancelledError:  # a timeout: free its place in the queue at once
            if pending in self._queue:
                self._queue.remove(pending)
                self._queue_depth.set(len(self._queue))
            raise

    def _queued_rows(self) -> int:
        return sum(len(p.batch) for p in self._queue if not p.future.done())

    async def _gather(self) -> None:
        """After a call: wait for more requests until as many rows as lately (at most max_batch)
        or the oldest one's deadline."""
        enough = min(max(self._recent_rows), self.max_batch)
        deadline = self._queue[0].arrived + self.max_delay
        while self._queued_rows() < enough:
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
        self._queue_depth.set(len(self._queue))
        return taken

    async def _call(self, batch) -> list:
        """The model's outputs for one batch: on the event loop when the call should be short, else
        on an inference thread."""
        rows = len(batch)
        if (self._inline is not None and rows * self._seconds_per_row < INLINE_BELOW_S
                and requests_in_flight() <= 1):
            started = time.perf_counter()
            outputs = self._inline(batch)
            seconds = time.perf_counter() - started
        else:
            outputs, seconds = await self._thread.call(batch)
        self._seconds_per_row += 0.25 * (seconds / rows - self._seconds_per_row)
        return outputs

    async def _run_alone(self, batch) -> dict:
        """The idle fast path: one request, run at once."""
        self._running += 1
        self._queue_time.observe(0.0)
        self._batch_size.observe(len(batch))
        self._recent_rows.append(len(batch))
        try:
            outputs = await self._call(batch)
        except Exception as exc:
            raise InferenceError(_describe(exc)) from None
        finally:
            self._running -= 1
            if self._queue:
                self._arrival.set()  # requests came in meanwhile: the batching task takes them
        return dict(zip(self.model.output_names, outputs))

    async def _work(self) -> None:
        while True:
            if self._queue and self._running < self.instances:
                await self._gather()
            else:
                self._arrival.clear()
                await self._arrival.wait()  # idle, or every instance has a call in flight
                continue
            taken = self._take()
            if not taken:
                continue
            self._running += 1  # counted before a task starts it, so the next turn sees it
            if self.instances == 1:
                await self._run(taken)  # nothing else could run meanwhile: no task to create
            else:  # the next batch may go to another instance while this one runs
                call = asyncio.get_running_loop().create_task(self._run(taken))
                self._calls.add(call)
                call.add_done_callback(self._calls.discard)

    async def _run(self, taken: list) -> None:
        """One call for the requests taken (the caller has counted it in ``_running``)."""
        started = time.perf_counter()
        for pending in taken:
            self._queue_time.observe(started - pending.arrived)
        batch = taken[0].batch if len(taken) == 1 else np.concatenate([p.batch for p in taken])
        self._batch_size.observe(len(batch))
        self._recent_rows.append(len(batch))
        try:
            outputs = await self._call(batch)
        except Exception as exc:  # onnxruntime's own failure: every caller in the batch learns it
            for pending in taken:
                if not pending.future.done():
                    pending.future.set_exception(InferenceError(_describe(exc)))
            return
        finally:
            self._running -= 1
            if self._queue and self.instances > 1:
                self._arrival.set()  # an instance is free for what queued meanwhile
        start = 0
        for pending in taken:
            stop = start + len(pending.batch)
            if not pending.future.done():
                pending.future.set_result({name: out[start:stop] for name, out in zip(self.model.output_names, outputs)})
            start = stop


def _time_one_row(model) -> float:
    """Seconds for one row, from a warm-up call of a zero row (which also warms onnxruntime up)."""
    run, row = model.runner(0), np.zeros((1, *model.input.shape), np.float32)
    try:
        run(row)
        started = time.perf_counter()
        run(row)
    except Exception:  # the model's own failure, which requests will meet and report
        return 0.0
    return time.perf_counter() - started


def _describe(exc: BaseException) -> str:
    return f"inference failed ({type(exc).__name__}: {first_line(exc)})"
