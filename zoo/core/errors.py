def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, cut at ``limit`` characters (its type's name when it
    has none): errors from torch, onnx and onnxruntime run to pages, and a user reads one line."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]


class ZooError(Exception):
    """An error the user can fix. The CLI prints its message as one line and exits non-zero."""

    exit_code = 1


class ZooUsageError(ZooError):
    """A wrong name or option on the command line (exit code 2, like click's own usage errors)."""

    exit_code = 2
