"""What `GET /metrics` reports, in Prometheus' text format (through prometheus-client).

The ``model`` label only ever holds the name of a loaded model, or "" for routes without one and
for unknown names: a client must not be able to grow the label set by asking for made-up models.

With several workers (``zoo serve --workers N``) each process counts into files of its own in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, set up by zoo/serve/http/run.py), and
``GET /metrics``, whichever worker answers it, adds up every worker's, the dead ones' included: each
request is counted once. The queue-depth gauge sums the live workers only.
"""

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model_names):
        # A registry of our own, not the process-wide default one: two apps in one process (as in
        # a test) must not share or collide on counters.
        self.registry = CollectorRegistry()
        labels = {"registry": self.registry}
        self.requests = Counter(
            "zoo_serve_requests", "HTTP requests answered, by model and status code", ["model", "status"], **labels
        )
        self.errors = Counter(
            "zoo_serve_errors", "HTTP requests answered with status 400 or above", ["model", "status"], **labels
        )
        self.latency = Histogram(
            "zoo_serve_request_seconds",
            "Time from request to response, by model",
            ["model"],
            buckets=LATENCY_BUCKETS,
            **labels,
        )
        self.queue_time = Histogram(
            "zoo_serve_queue_seconds",
            "Time an inference request waited for its batch",
            ["model"],
            buckets=LATENCY_BUCKETS,
            **labels,
        )
        self.batch_size = Histogram(
            "zoo_serve_batch_rows",
            "Rows in each onnxruntime call (merged requests)",
            ["model"],
            buckets=BATCH_BUCKETS,
            **labels,
        )
        self.queue_depth = Gauge(
            "zoo_serve_queue_depth",
            "Inference requests waiting for a batch",
            ["model"],
            multiprocess_mode="livesum",
            **labels,
        )
        self.shared = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if self.shared:  # what /metrics reports: every worker's files, not this process's counters
            self.render_registry = CollectorRegistry()
            MultiProcessCollector(self.render_registry)
        else:
            self.render_registry = self.registry
        self._children: dict = {}
        for name in model_names:  # every model appears from the start, at zero
            self.queue_depth.labels(name).set(0)
            self.batch_size.labels(name)
            self.queue_time.labels(name)

    def observe_request(self, model: str, status: int, seconds: float) -> None:
        # The labelled children are cached: labels() takes a lock and a lookup on every call. The
        # keys stay few: model is a loaded model's name or "", status one of a handful of codes.
        key = (model, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(model, str(status)),
                self.errors.labels(model, str(status)) if status >= 400 else None,
                self.latency.labels(model),
            )
        requests, errors, latency = children
        requests.inc()
        if errors is not None:
            errors.inc()
        latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.render_registry)
