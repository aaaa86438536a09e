"""Atomic file writes: a temporary name in the same folder, then one rename.

A killed run never leaves a half-written output; readers see the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step.

    The temporary file is ``.<stem>.tmp-<pid>-<random><suffix>``: it keeps the suffix of
    ``path`` (writers that infer the format from it keep working), and what a killed process
    left behind matches ``.*.tmp-*`` (`remove_stale_temps` deletes it on the next run). On an
    exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.stem}.tmp-{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)  # mkstemp makes 0600 files; give the result the usual mode
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_OWNER = re.compile(r"\.tmp-(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temps(*folders: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (``.*.tmp-*``) that killed runs left in `folders`.

    A temporary file whose writer is still running (its pid is in the name and alive) is
    kept; one without a pid (an older version's) or of a dead process is deleted. Returns the
    files deleted.
    """
    removed = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for tmp in folder.glob(".*.tmp-*"):
            owner = _OWNER.search(tmp.name)
            pid = int(owner.group(1)) if owner else None
            if pid is not None and pid != os.getpid() and _alive(pid):
                continue
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
