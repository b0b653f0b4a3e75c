"""One benchmark at a time per machine, and a clean end on SIGTERM."""

import contextlib
import os
import tempfile
from pathlib import Path

LOCK_FILE = Path(tempfile.gettempdir()) / "zoo-bench.lock"  # holds the running benchmark's pid


@contextlib.contextmanager
def terminate_cleanly():
    """SIGTERM ends the run like Ctrl-C does: the workers are told to quit and the temporary folder
    (run folders, exports, inputs) is removed, instead of being left behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def one_at_a_time(wait: bool, log, path: Path = LOCK_FILE):
    """Two benchmark runs on one machine spoil each other's numbers: hold a lock for the run's length.
    A full run waits for another to finish; a --quick smoke run goes ahead and says so. Yields
    whether this run had the machine's benchmarks to itself."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks here: nothing to coordinate with
        yield True
        return
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except OSError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            if not wait:
                log(f"another zoo bench (pid {holder}) is running; this --quick run goes ahead, its numbers disturbed")
                yield False
                return
            log(f"waiting for another zoo bench (pid {holder}) to finish ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
            alone = True
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield alone
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock, fcntl.LOCK_UN)
