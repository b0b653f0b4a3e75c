"""Atomic file writes: write to a temporary name in the same folder, then rename into place, so a
reader (or a resumed run) sees the old file or the new one, never half of one. No torch here: the
torch-free runtime uses it too."""

import json
import os
import tempfile
from pathlib import Path


def usual_permissions(path) -> None:
    """Give a file the mode a plain ``open(path, "w")`` would: mkstemp's 0600 (and libraries that
    write their own temporary file, like safetensors) would make run folders and artifacts private,
    so another account could not serve them."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def temp_beside(path) -> Path:
    """A new empty temporary file in ``path``'s folder (same file system, so rename is atomic),
    with the usual permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    usual_permissions(tmp)
    return Path(tmp)


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)``, then rename the finished file onto ``path``."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        usual_permissions(tmp)  # the writer may have replaced the file with a private one
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")
