"""CSV files the workstation writes (cohort.csv, readers.csv): locked, rewritten atomically.

Every change reads the current file, changes its rows and writes the whole file to a
temporary name that is then renamed over it (`thyrovid.atomic`), while holding a lock: a
thread lock for the tabs of one server, and an advisory `flock` on `.<name>.lock` beside the
file for two servers on the same file. A reader of the file sees the old rows or the new
ones, never a torn row; two saves at the same moment both land, neither is lost.
"""

from __future__ import annotations

import contextlib
import csv
import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from thyrovid.atomic import write_text_atomic
from thyrovid.errors import UserError

try:  # POSIX; elsewhere the thread lock alone (one server per file)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class LockedTable:
    """A CSV file changed only under a lock, by whole-file atomic rewrites.

    Args:
        path: the CSV file (created on the first change).
        columns: the columns a new file gets, in this order (an existing file keeps its own,
            plus any of these it lacks).
    """

    def __init__(self, path, columns):
        self.path = Path(path).resolve()
        self.columns = list(columns)
        self._lock = threading.Lock()
        if self.path.exists() and not self.path.is_file():
            raise UserError(f"{self.path}: not a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if fcntl is None:  # pragma: no cover
                yield
                return
            lock_path = self.path.parent / f".{self.path.name}.lock"
            with open(lock_path, "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def _read(self) -> tuple[list[str], list[dict]]:
        """(columns, rows as dicts of stripped strings, keys normalised) of the file now."""
        from thyrovid.csv_input import normalise_column, read_table

        if not self.path.exists() or self.path.stat().st_size == 0:
            return list(self.columns), []
        df, _ = read_table(self.path, self.path.name)
        df.columns = [normalise_column(c) for c in df.columns]
        columns = list(df.columns) + [c for c in self.columns if c not in df.columns]
        rows = [{c: rec.get(c, "") for c in columns} for rec in df.to_dict("records")]
        return columns, rows

    def rows(self) -> list[dict]:
        """The rows now (read under the lock, so never a half-written change)."""
        with self._locked():
            return self._read()[1]

    def change(self, edit: Callable[[list[dict]], list[dict]]):
        """Apply `edit` (current rows -> new rows) and write the file; returns `edit`'s rows.

        `edit` may raise UserError to refuse the change (the file is then untouched).
        """
        with self._locked():
            columns, rows = self._read()
            new = edit(rows)
            for rec in new:
                columns += [k for k in rec if k not in columns]
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            for rec in new:
                writer.writerow({c: rec.get(c, "") for c in columns})
            write_text_atomic(self.path, buf.getvalue())
            return new
