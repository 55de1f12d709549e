"""The platform in one process: run a submission end to end and read leaderboards.

This is the layer between the command line (or web app) and the engine's packages: it validates
a submission, prepares the task's data, runs the sweep on the worker pool, scores the best
trial's test predictions against the hidden labels, and records everything in the store and in
MLflow. A failure after the submission was recorded marks it failed; nothing is lost or left
half-written on the leaderboard.

``_arena`` holds :class:`Arena`, the facade (submit, resume, enqueue, cancel, leaderboards), over
``_tasks`` (each task's data and worker pool), ``_records`` (what a submission leaves behind),
``_heartbeat`` (the stamps of the submissions this process drives) and ``scheduler`` (the queue
worker); ``_run`` holds the values passed between them.
"""

from __future__ import annotations

from medarena.arena._arena import Arena
from medarena.arena._run import ArenaConfig, SubmissionResult

__all__ = ["Arena", "ArenaConfig", "SubmissionResult"]
