"""The one error hierarchy: every failure a user can act on is a `LimbwatchError`.

Each kind says what the caller can do about it and carries its exit status (`exit_status`, used
by every command); the API maps them once to HTTP status codes (`api.errors`):

| kind          | meaning                                          | exit | HTTP |
|---------------|--------------------------------------------------|------|------|
| `BadInput`    | the request, file or configuration is wrong: fix it | 2 | 400/422 |
| `NotFound`    | no such subject, night, ...                      | 2    | 404  |
| `Conflict`    | not possible in the current state (no report yet) | 2   | 409  |
| `Unavailable` | a store or server cannot be used now: retry later | 3   | 503  |
| `Damaged`     | stored data failed a check: restore or re-collect | 4   | 500  |
| `Refused`     | not allowed: another process holds it, no access | 5    | 403  |

`BadInput` is also a `ValueError` so that code validating values reads naturally.
"""

from __future__ import annotations

from typing import ClassVar


class LimbwatchError(Exception):
    """A failure with a one-line message that says what went wrong and what to do."""

    exit_status: ClassVar[int] = 2


class BadInput(LimbwatchError, ValueError):
    """A request, file, option or configuration value is wrong; nothing was changed."""


class NotFound(BadInput):
    """The thing asked for does not exist (or may not be known to the asker)."""


class Conflict(LimbwatchError):
    """The request cannot be served in the current state (e.g. the night has no report yet)."""


class Unavailable(LimbwatchError):
    """A store, spool or server cannot be used now (locked, down, disk full); retry later."""

    exit_status = 3


class Damaged(LimbwatchError):
    """Stored data failed an integrity check; it is reported and skipped, never returned."""

    exit_status = 4


class Refused(LimbwatchError):
    """Not allowed: another process holds the resource, or the caller lacks the right."""

    exit_status = 5
