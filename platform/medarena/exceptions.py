"""The errors MedArena raises.

::

    MedArenaError
    ├── UserError               shown to the user as it is: what, where, how to fix
    │   ├── TaskNotFoundError       an unknown task name; lists the known ones
    │   ├── TaskSpecError           a task.yaml that does not validate
    │   ├── DatasetError            data a reader cannot use: a missing folder, a bad case
    │   ├── SplitMismatchError      results from different splits of one task would be mixed
    │   ├── SubmissionError         a submission folder that does not validate or fails its dry run
    │   ├── TrialError              the submitted code raised inside a trial
    │   └── PredictionFileError     a reference/prediction file that cannot be scored
    └── PlatformError           the platform's own fault: logged in full for the operator,
                                shown to the user as "an unexpected error occurred"

Lower-level errors (YAML, pydantic, Ray, SQLAlchemy) are translated at the boundary with
``raise ... from exc`` so callers only ever need to catch these.
"""

from __future__ import annotations


class MedArenaError(Exception):
    """Base of every error MedArena raises on purpose."""


class UserError(MedArenaError):
    """An error whose message is meant for the person who caused it."""


class TaskNotFoundError(UserError):
    """A task name that is not in the catalogue."""


class TaskSpecError(UserError):
    """A task.yaml that is missing, unreadable or invalid."""


class SplitMismatchError(UserError):
    """A result would be mixed with results computed on a different split of the same task."""


class SubmissionError(UserError):
    """A submission folder that does not validate or whose dry run fails."""


class TrialError(UserError):
    """Submitted code raised an exception inside a trial."""


class PlatformError(MedArenaError):
    """Something went wrong on the platform's side; not the user's fault."""


class PredictionFileError(UserError):
    """A reference, prediction or case-list file that cannot be scored."""


class DatasetError(UserError):
    """A task's data that cannot be read as declared: names the file or case and how to fix it."""
