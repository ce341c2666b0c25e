"""Writing files atomically, for every part of pynet that writes one (models, reports, datasets and
their caches, the CLI's logs): ``atomic_file(path)`` and the temporary names it uses."""
import contextlib
import errno
import os
import secrets
from pathlib import Path

__all__ = ["atomic_file", "temp_name", "local_error_reason"]


def temp_name(path):
    """A fresh hidden name next to ``path`` for writing it atomically."""
    path = Path(path)
    return path.with_name(".%s.%s.part" % (path.name, secrets.token_hex(4)))


def local_error_reason(e):
    """What a local write failure (OSError ``e``) means, in words: the disk is full, the file system is
    read-only (never "permission denied", which is what access() suggests for one), else strerror."""
    return {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
            errno.EDQUOT: "the disk quota is exceeded"}.get(e.errno, e.strerror or str(e))


@contextlib.contextmanager
def atomic_file(path, durable=False):
    """Write ``path`` through a temporary file in the same folder that replaces it only when the
    block completes; on any error the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    # O_EXCL: never write through somebody else's file; 0o666 lets the umask decide permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
