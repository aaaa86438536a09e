"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""

import os


class UserError(Exception):
    """A problem with the user's input (file, row, argument), not a bug.

    The message is one line that names the file or row and what to do about it.
    """


class VideoError(UserError):
    """A video file that cannot be opened or decoded."""


class CohortError(UserError):
    """A cohort.csv row or file that does not satisfy the contract."""


class ModelError(UserError):
    """The run's model cannot be used (for example an export onnxruntime cannot load).

    Unlike a bad video, it stops the whole command: no other video would fare better.
    """


def plain(exc: BaseException) -> str:
    """An exception's message for a user's line with its paths as written.

    ``str()`` of an OSError quotes its file name with ``repr()``, which doubles every backslash
    of a Windows path ('C:\\\\data\\\\x.dcm'); this gives its reason and the name plainly
    ("No such file or directory: C:\\data\\x.dcm"). Other exceptions: ``str()``.
    """
    if isinstance(exc, OSError) and exc.strerror:
        names = [os.fsdecode(n) for n in (exc.filename, exc.filename2) if n is not None]
        return exc.strerror + "".join(f": {n}" for n in names)
    return str(exc)
