"""The memory a worker's requests may hold at once (``--max-memory-mb``), and handing freed memory
back to the system.

Each infer request holds a share of the budget from the moment it is admitted until its answer has
been written to the client: its body as it arrives (the declared Content-Length at once, a chunked
body chunk by chunk), what parsing its JSON can cost in Python objects (``protocol.parse_cost``) and
what its answer can take (``protocol.answer_bound``). Once the answer is sent, what of it still sits
in the connection's buffer stays held until the client has read it (or the connection is dropped),
so clients that never read cannot pile answers up past the budget. A request that would take the
budget past its limit is refused at once with a 503 (retry shortly), and one that could never fit
with a 413. Without the
budget, 2,048 connections each sending a 25 MB body would all be read and parsed at once.
"""

import functools
import sys

DEFAULT_MB = 1024


class OverBudget(Exception):
    """Taking these bytes would pass the budget; ``never`` when they are more than all of it."""

    def __init__(self, wanted: int, limit: int):
        super().__init__(wanted)
        self.never = wanted > limit
        self.limit = limit

    def message(self) -> str:
        mb = self.limit / 2**20
        if self.never:
            return (
                f"the request needs more memory than this server's whole budget of {mb:g} MiB "
                "(--max-memory-mb): send fewer rows per request"
            )
        return f"the server is at its memory budget of {mb:g} MiB for requests in flight; retry shortly"


class MemoryBudget:
    def __init__(self, limit_bytes: int):
        self.limit = limit_bytes
        self.used = 0

    def hold(self) -> "Hold":
        return Hold(self)


class Hold:
    """What one request holds of the budget; ``release()`` gives it all back."""

    __slots__ = ("budget", "bytes")

    def __init__(self, budget: MemoryBudget):
        self.budget = budget
        self.bytes = 0

    def take(self, count: int) -> None:
        budget = self.budget
        if budget.used + count > budget.limit:
            raise OverBudget(self.bytes + count, budget.limit)
        budget.used += count
        self.bytes += count

    def release(self) -> None:
        self.budget.used -= self.bytes
        self.bytes = 0

    def keep(self, count: int) -> None:
        """Give back all but ``count`` bytes (an answer still waiting to be written holds only itself)."""
        if count < self.bytes:
            self.budget.used -= self.bytes - count
            self.bytes = count


# After a request and answer this large, hand the free memory of glibc's heaps back to the system: freed but
# kept, a burst of large requests would leave the server tens of MB larger for good. It takes about
# a millisecond, next to the tens that such a request costs.
TRIM_AFTER_BYTES = 1 << 20


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None; found on first use, so that `zoo serve --help` loads no ctypes."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    return getattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim", None)


def release_memory() -> None:
    if (trim := _malloc_trim()) is not None:
        trim(0)
