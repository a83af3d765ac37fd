"""Running a checked batch: here, one job after another, or on a Ray cluster; resuming where a run stopped.

:class:`BatchRun` records every refused row, skips every job whose ``ok`` record and files exist for the same
settings (unless forced), removes what killed writers left staged beside the outputs, runs the rest, and
appends each record to ``results.jsonl`` the moment it arrives. Nothing is loaded, and no file changes,
when nothing is left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..optional import require
from ..outputs import remove_staged
from .interfaces import BatchEvents, RaySettings
from .plan import BatchJob, BatchPlan, Refusal
from .results import ResultsFile
from .worker import JobRunner, RunnerConfig


@dataclass(frozen=True)
class BatchSummary:
    """How a batch ended: ``jobs`` rows in all, ``ok`` of them (``done_before`` of those skipped as already
    done), ``failed`` (refused rows included)."""

    jobs: int
    ok: int
    done_before: int
    failed: int

    @property
    def all_ok(self) -> bool:
        return self.failed == 0


def _refusal_record(refusal: Refusal) -> dict[str, Any]:
    error = refusal.problem if refusal.column is None else f"column {refusal.column}: {refusal.problem}"
    return {
        "row": refusal.row,
        "status": "failed",
        "output": refusal.output,
        "error": error,
        "seed": None,
        "seconds": 0.0,
        "worker": None,
        "settings": refusal.key,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _done(job: BatchJob, latest: dict[str, dict[str, Any]]) -> bool:
    record = latest.get(job.key)
    return record is not None and record.get("status") == "ok" and all(path.is_file() for path in job.targets())


class BatchRun:
    """What is left to do of a checked batch writing into ``config.out``.

    Attributes:
        to_run: the jobs that will run.
        done: the jobs skipped, their ``ok`` record and files already there for the same settings.
        refused: the rows that cannot run.
    """

    def __init__(self, plan: BatchPlan, config: RunnerConfig, *, force: bool = False):
        """
        Args:
            plan: the checked rows (:class:`~relightvid_core.batch.plan.Planner`).
            config: models, precision, device and output folder, shared by every worker.
            force: run every job, even those already done.
        """
        self.config = config
        self.results = ResultsFile(config.out)
        self.latest = self.results.latest()
        self.done = [] if force else [job for job in plan.jobs if _done(job, self.latest)]
        done_rows = {job.row for job in self.done}
        self.to_run = [job for job in plan.jobs if job.row not in done_rows]
        self.refused = plan.refused

    def execute(self, events: BatchEvents, ray: RaySettings | None = None) -> BatchSummary:
        """Record the refused rows, run the jobs left (here, or on a Ray cluster) and record each as it ends.

        A refused row already recorded with the same sentence is not recorded again, so a rerun with nothing
        left to do changes no file.

        Returns:
            The :class:`BatchSummary`.

        Raises:
            ModelsUnavailable: the models cannot be loaded; jobs finished before are recorded.
            MissingDependencyError: ``ray`` is given and Ray is not installed.
            InputError: ``ray`` settings the cluster cannot honour.
            KeyboardInterrupt: interrupted; finished jobs are recorded and no staged file is left.
        """
        counts = {"ok": len(self.done), "failed": len(self.refused)}
        for refusal in self.refused:
            entry = _refusal_record(refusal)
            previous = self.latest.get(refusal.key)
            if previous is None or previous.get("error") != entry["error"]:
                self.results.append(entry)

        def record(entry: dict[str, Any]) -> None:
            self.results.append(entry)
            counts[entry["status"]] += 1
            events.finished(entry)

        if self.to_run:
            if ray is not None:
                require("ray.data", "running a batch on a Ray cluster (--ray)")
            _remove_staged(self.to_run)
            try:
                if ray is None:
                    _run_here(self.to_run, self.config, events, record)
                else:
                    from .on_ray import run_on_ray

                    run_on_ray(self.to_run, self.config, ray, events, record)
            finally:
                _remove_staged(self.to_run)
        jobs = len(self.to_run) + len(self.done) + len(self.refused)
        return BatchSummary(jobs, counts["ok"], len(self.done), counts["failed"])


def _remove_staged(jobs: Sequence[BatchJob]) -> None:
    """Remove files that writers killed mid-job left staged beside these jobs' outputs."""
    for job in jobs:
        for target in job.targets():
            remove_staged(target)


def _run_here(
    jobs: Sequence[BatchJob],
    config: RunnerConfig,
    events: BatchEvents,
    record: Callable[[dict[str, Any]], None],
) -> None:
    runner = JobRunner(config, on_step=events.step)
    for job in jobs:
        events.running([job.row])
        entry = runner.run(job)
        events.running([])
        record(entry)
