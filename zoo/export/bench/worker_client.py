"""The orchestrator's end of the worker protocol (worker.py): starts one worker process and sends it
requests."""

import contextlib
import json
import os
import subprocess
import sys

from zoo.core.errors import ZooError

WORKER_MODULE = "zoo.export.bench.worker"


class WorkerProcess:
    """A worker process; calling it sends one request and waits for its reply."""

    def __init__(self, runtime: str, threads: int, cwd):
        self.runtime, self.threads = runtime, threads
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, "--runtime", runtime, "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(cwd),
        )
        # cwd: a folder with no Python packages in it, since `python -m` puts it first on sys.path.
        self._read()  # {"ready": ...}

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise ZooError(
                f"the {self.runtime} benchmark worker ({self.threads} threads) exited "
                f"with status {self.proc.wait()}; its error is above"
            )
        reply = json.loads(line)
        if "error" in reply:
            raise ZooError(f"{self.runtime} worker: {reply['error']}")
        return reply

    def __call__(self, op: str, **request) -> dict:
        self.proc.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
