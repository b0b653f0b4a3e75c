"""Dynamic batching: concurrent requests to one model share one onnxruntime call.

Admission. A request counts against the model's ``max_queue`` from the moment the server admits it
(before its body is read) until its answer has been sent, whatever that answer is: ``admit()`` and
``leave()``, called by the hot path. Past ``max_queue`` a request is refused at once. So the queue
bound covers every request the model holds: arriving, parsed, waiting, running, being answered.

One run path. Every call goes through ``_dispatch``: it counts the instance busy, hands the batch to
an inference thread (or runs it on the event loop, below), and when the call itself has ended,
``_finish`` frees the instance, gives each request its own rows, and wakes the batching task. The
busy count is exact: a request that times out while its call runs does not free the instance, the
call's end does. A call is dispatched only when an instance is free, so the threads' job queue never
holds a call that waits: work is never started for a request that has already given up, and a
request that gives up while queued is dropped from the queue with its work.

When to run:

- The model is idle and a request arrives: it is dispatched at once, without a detour through the
  batching task. Waiting for company would only add latency, since nobody else is asking.
- A call is in flight: requests queue up. When it ends, the batching task takes the queued
  requests. It waits for more only while fewer rows are queued than the largest of the last few
  calls took (never past ``max_batch`` rows, nor past the oldest request having waited
  ``max_delay`` seconds in all): up to that many are likely on their way, as the answers just sent
  bring their clients back. A closed loop of N clients never sends more than N requests at once.

When a request is the only one the server has received and not yet answered (``IN_FLIGHT``), a call
predicted to be short (its rows times the model's recent seconds per row under ``INLINE_BELOW_S``)
runs on the event loop itself: there is nothing to batch with and nothing to serve meanwhile, and
handing the call to a thread and back costs two thread switches, the GIL changing hands and a
wake-up of the loop, as much as a small model's call. With other requests in flight, calls go to
the threads, so that requests keep arriving, and queueing, while one runs.

A repository's model whose config.pbtxt has no dynamic_batching (and to which Triton adds none:
``repository._batches``) runs each request in a call of its own, queued requests included, as
Triton runs it.

With several instances (``instance_group`` in a repository's config.pbtxt, or ``--instances``), up
to that many calls run at once, each on an instance's own session and thread.

Each inference thread runs onnxruntime, which frees the GIL, so the event loop keeps serving. It is
fed through a plain queue: a ThreadPoolExecutor and its future wrapping cost about 20 us more per
call, as much as a small model's whole call.
"""

import asyncio
import collections
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from zoo.core.errors import first_line

INLINE_BELOW_S = 0.0005  # a call predicted shorter than this runs on the event loop (see above)


class InferenceError(Exception):
    """onnxruntime failed on a batch."""


class InFlight:
    """Requests this process has received and not yet answered. The connection layer counts each
    one in from the moment its head is parsed, before the app starts on it, so that a burst that has
    arrived counts in full even while the loop serves its first request; the app's outermost layer
    (middleware.Observe) counts it out when the app is done with it."""

    def __init__(self):
        self.count = 0


IN_FLIGHT = InFlight()  # one server per process


@dataclass(eq=False)  # compared by identity: removing one from the queue must not compare arrays
class Pending:
    batch: np.ndarray
    future: asyncio.Future
    arrived: float
    deadline: float  # time.perf_counter() past which its client gets a 504 instead


class InferenceThreads:
    """One thread per instance, each running its own ``run(batch)`` one call at a time, and calling
    ``done(outputs, error, seconds)`` on the event loop when the call ends."""

    def __init__(self, runs: list, name: str):
        self._jobs = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, args=(run,), name=f"{name}-{i}", daemon=True)
            for i, run in enumerate(runs)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, batch, done) -> None:
        self._jobs.put((asyncio.get_running_loop(), batch, done))

    def _serve(self, run) -> None:
        while (job := self._jobs.get()) is not None:
            loop, batch, done = job
            outputs, error, seconds = _timed(run, batch)
            loop.call_soon_threadsafe(done, outputs, error, seconds)

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


def _timed(run, batch) -> tuple:
    """(outputs, None, seconds) or (None, the error, seconds): the call's own seconds, measured
    where it runs (what the loop sees also holds its own delays)."""
    started = time.perf_counter()
    try:
        outputs, error = run(batch), None
    except Exception as exc:  # onnxruntime's own failure: the callers learn it
        outputs, error = None, exc
    return outputs, error, time.perf_counter() - started


class Batcher:
    def __init__(self, model, max_queue: int, metrics):
        self.model = model
        self.max_batch = model.serving.max_batch
        self.max_delay = model.serving.max_delay_ms / 1000
        self.instances = model.serving.instances
        self.merge = model.serving.dynamic_batching  # False: one request per call, as Triton without dynamic_batching
        self.max_queue = max_queue
        self.admitted = 0  # requests admitted and not yet answered (see the module's docstring)
        # The labelled children, looked up once: labels() takes a lock and a dict lookup each time.
        self._queue_depth = metrics.queue_depth.labels(model.name)
        self._queue_time = metrics.queue_time.labels(model.name)
        self._batch_size = metrics.batch_size.labels(model.name)
        self._queue = collections.deque()  # admitted requests whose rows wait for a call
        self._wake = asyncio.Event()  # a request queued or an instance freed
        self._threads = InferenceThreads([model.runner(i) for i in range(self.instances)], f"infer-{model.name}")
        self._inline = model.runner(0) if self.instances == 1 else None
        self._seconds_per_row = _time_one_row(model)  # then an average that follows the recent calls
        self._worker = None
        self.busy = 0  # instances running a call: counted up by _dispatch, down by _finish
        self._recent_rows = collections.deque([1], maxlen=8)  # rows in each of the last calls

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.model.name}")

    async def stop(self) -> None:
        """Called after the server has answered every request in flight."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._threads.stop()

    def admit(self) -> bool:
        """Count a request against ``max_queue``; False (count nothing) when the model holds as many."""
        if self.admitted >= self.max_queue:
            return False
        self.admitted += 1
        return True

    def leave(self) -> None:
        """An admitted request has been answered (or its client has gone)."""
        self.admitted -= 1

    async def infer(self, batch: np.ndarray, deadline: float = float("inf")) -> dict:
        """``{output name: rows}`` for this request's rows (the caller has admitted it); TimeoutError
        at once, without a call, when it has waited so long that its call could not end by
        ``deadline`` (a time.perf_counter() value)."""
        pending = Pending(batch, asyncio.get_running_loop().create_future(), time.perf_counter(), deadline)
        if self.busy < self.instances and not self._queue:
            self._dispatch([pending])  # idle: nobody to wait for
        else:
            self._queue.append(pending)
            self._queue_depth.set(len(self._queue))
            self._wake.set()
        try:
            return await pending.future
        except asyncio.CancelledError:  # a timeout: a request still queued leaves with its work
            if pending in self._queue:
                self._queue.remove(pending)
                self._queue_depth.set(len(self._queue))
            raise

    def _dispatch(self, taken: list) -> None:
        """Start one call for the requests taken: the one run path."""
        self.busy += 1
        started = time.perf_counter()
        for pending in taken:
            self._queue_time.observe(started - pending.arrived)
        batch = taken[0].batch if len(taken) == 1 else np.concatenate([p.batch for p in taken])
        self._batch_size.observe(len(batch))
        self._recent_rows.append(len(batch))
        if self._inline is not None and IN_FLIGHT.count <= 1 and len(batch) * self._seconds_per_row < INLINE_BELOW_S:
            self._finish(taken, len(batch), *_timed(self._inline, batch))
        else:
            self._threads.submit(
                batch, lambda outputs, error, seconds: self._finish(taken, len(batch), outputs, error, seconds)
            )

    def _finish(self, taken: list, rows: int, outputs, error, seconds: float) -> None:
        """A call has ended (on the event loop): free its instance and answer its requests."""
        self.busy -= 1
        if self._queue:
            self._wake.set()
        if error is not None:
            failure = InferenceError(_describe(error))
            for pending in taken:
                if not pending.future.done():
                    pending.future.set_exception(failure)
            return
        self._seconds_per_row += 0.25 * (seconds / rows - self._seconds_per_row)
        start = 0
        for pending in taken:
            stop = start + len(pending.batch)
            if not pending.future.done():  # a request that timed out meanwhile gets nothing
                pending.future.set_result(
                    {name: out[start:stop] for name, out in zip(self.model.output_names, outputs)}
                )
            start = stop

    async def _work(self) -> None:
        """The batching task: whenever requests are queued and an instance is free, gather and
        dispatch."""
        while True:
            if not (self._queue and self.busy < self.instances):
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._gather()
            if self.busy >= self.instances:  # the idle path took the instance meanwhile
                continue
            if taken := self._take():
                self._dispatch(taken)

    def _queued_rows(self) -> int:
        return sum(len(p.batch) for p in self._queue if not p.future.done())

    async def _gather(self) -> None:
        """Before a call: wait for more requests until as many rows as lately (at most max_batch)
        or the oldest one's deadline."""
        if not self.merge:
            return
        enough = min(max(self._recent_rows), self.max_batch)
        deadline = self._queue[0].arrived + self.max_delay
        while self._queue and self._queued_rows() < enough:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return

    def _take(self) -> list:
        """The queued requests for the next call, oldest first, up to max_batch rows. A request
        whose call would end past its deadline (at the recent seconds per row) is answered with a
        timeout at once instead: run, it would only delay everyone queued behind it for an answer
        nobody waits for. (Only queued requests are judged so: an idle model runs a request at
        once, which keeps the seconds per row up to date.)"""
        taken, rows, now = [], 0, time.perf_counter()
        while self._queue:
            pending = self._queue[0]
            if pending.future.done():  # its caller gave up
                self._queue.popleft()
                continue
            if taken and (not self.merge or rows + len(pending.batch) > self.max_batch):
                break
            self._queue.popleft()
            if now + (rows + len(pending.batch)) * self._seconds_per_row > pending.deadline:
                pending.future.set_exception(TimeoutError())
                continue
            taken.append(pending)
            rows += len(pending.batch)
        self._queue_depth.set(len(self._queue))
        return taken


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
