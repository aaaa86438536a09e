"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A problem with the user's input (file, row, argument), not a bug.

    The message is one line that names the file or row and what to do about it.
    """


class VideoError(UserError):
    """A video file that cannot be opened or decoded."""


class CohortError(UserError):
    """A cohort.csv row or file that does not satisfy the contract."""
