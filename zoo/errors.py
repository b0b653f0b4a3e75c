class ZooError(Exception):
    """An error the user can fix. The CLI prints its message as one line and exits non-zero."""

    exit_code = 1


class ZooUsageError(ZooError):
    """A wrong name or option on the command line (exit code 2, like click's own usage errors)."""

    exit_code = 2
