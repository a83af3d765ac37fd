"""One batch worker: loads the models once, then relights jobs one after another.

The same :class:`JobRunner` serves ``relightvid batch`` in its own process and inside every Ray worker, so a
job gives the same frames wherever it runs: it is :func:`~relightvid_core.pipeline.run_video_job` with the
options :func:`~relightvid_core.options.job_from_options` reads, the seed fixed when the row was checked.

Every job writes its outputs under temporary names and renames them when whole (``outputs.publish``), keeps its
log in ``<out>/logs/row-NNNN.log`` (appended per attempt) and returns one results record. A job that fails on
its own input gives a ``failed`` record with the sentence; only models that cannot be loaded stop the worker
(:class:`ModelsUnavailable`), since every later job would fail the same way.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RelightVidError
from ..model_files import ModelOptions
from .plan import BatchJob
from .results import LOGS_NAME

if TYPE_CHECKING:
    import torch

    from ..pipeline import Components
    from ..sampling import StepInfo

LIBRARY_LOGGER = "relightvid_core"
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ModelsUnavailable(RelightVidError):
    """The models cannot be loaded on this worker (missing or wrong files, a device it lacks): the batch stops."""


@dataclass(frozen=True)
class RunnerConfig:
    """What every worker of a batch shares: the model files, ``dtype`` and ``device`` (names as the command
    line takes them), the output folder ``out`` and, for CPU workers, the ``threads`` torch may use (None:
    torch's default)."""

    models: ModelOptions
    dtype: str
    device: str
    out: Path
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        models = {name: str(value) if isinstance(value, Path) else value for name, value in asdict(self.models).items()}
        return {
            "models": models,
            "dtype": self.dtype,
            "device": self.device,
            "out": str(self.out),
            "threads": self.threads,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunnerConfig:
        paths = ("models", "sd", "iclight", "motion", "merged")
        models = {
            name: Path(value) if name in paths and value is not None else value
            for name, value in data["models"].items()
        }
        return cls(ModelOptions(**models), data["dtype"], data["device"], Path(data["out"]), data["threads"])


def memory_mb() -> float | None:
    """This process's resident memory in MiB (Linux; None where /proc is missing)."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(resident_pages * PAGE_BYTES / 2**20, 1)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class JobRunner:
    """Runs checked jobs one at a time on one device, loading the models at the first job.

    Args:
        config: the batch's :class:`RunnerConfig`.
        where: extra facts naming this worker in results (e.g. the Ray node).
        on_step: called with (row, step info) after every sampling step, for progress.
    """

    def __init__(
        self,
        config: RunnerConfig,
        where: Mapping[str, Any] | None = None,
        on_step: Callable[[int, StepInfo], None] | None = None,
    ):
        self.config = config
        self.where = dict(where or {})
        self.on_step = on_step
        self.components: Components | None = None
        self.device: torch.device | None = None

    def worker(self) -> dict[str, Any]:
        """Host, device and process of this worker, as results name them."""
        device = str(self.device) if self.device is not None else self.config.device
        if self.device is not None and self.device.type == "cuda":
            import torch

            device = f"{device} ({torch.cuda.get_device_name(self.device)})"
        return {"host": socket.gethostname(), "device": device, "pid": os.getpid(), **self.where}

    def _load(self, log: logging.Logger) -> Components:
        """The models, loaded at the first call.

        Raises:
            ModelsUnavailable: the files are missing or wrong, or the device cannot be used.
        """
        if self.components is not None:
            return self.components
        import torch

        from ..model_files import describe, load_components, pick_device, pick_dtype

        try:
            self.device = pick_device(self.config.device)
            dtype = pick_dtype(self.config.dtype, self.device)
            if self.config.threads is not None and self.device.type == "cpu":
                torch.set_num_threads(self.config.threads)
            files = self.config.models.locate()
            log.info("loading models (%s on %s):", str(dtype).removeprefix("torch."), self.device)
            for line in describe(files):
                log.info("  %s", line)
            self.components = load_components(
                files, dtype=dtype, device=self.device, motion_variant=self.config.models.motion_variant
            )
        except RelightVidError as error:
            raise ModelsUnavailable(f"the models cannot be loaded on {socket.gethostname()}: {error}") from error
        return self.components

    def run(self, job: BatchJob, attempt: int = 1) -> dict[str, Any]:
        """Relight one job; return its results record (``status`` ``ok`` or ``failed``).

        Raises:
            ModelsUnavailable: the models cannot be loaded (nothing is recorded for the job).
            KeyboardInterrupt: the run was interrupted (its temporary files are already removed).
        """
        from ..pipeline import run_video_job

        log_path = self.config.out / LOGS_NAME / f"row-{job.row:04d}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        library = logging.getLogger(LIBRARY_LOGGER)
        saved = library.level, library.propagate
        library.addHandler(handler)
        # The job's own log gets the library's INFO lines; the terminal keeps only the batch's bar.
        library.setLevel(logging.INFO)
        library.propagate = False
        log = logging.getLogger(f"{LIBRARY_LOGGER}.batch.job")
        record: dict[str, Any] = {
            "row": job.row,
            "output": job.output,
            "contact_sheet": job.contact_sheet,
            "latent": job.latent,
            "seed": job.seed,
            "seed_drawn": job.seed_drawn,
            "settings": job.key,
            "attempt": attempt,
            "log": str(log_path.relative_to(self.config.out)),
        }
        start = time.perf_counter()
        try:
            log.info("--- row %d, attempt %d, %s, pid %d %s", job.row, attempt, _now(), os.getpid(), self.where or "")
            log.info("seed %d%s, settings %s", job.seed, " (drawn)" if job.seed_drawn else "", job.key)
            load_start = time.perf_counter()
            components = self._load(log)
            record["load_seconds"] = round(time.perf_counter() - load_start, 3)
            log.info("worker: %s", self.worker())
            video_job, settings = job.library_job()
            result = run_video_job(
                video_job,
                settings,
                components,
                callback=lambda info: self._step(job.row, info, log),
                announce=lambda plan: log.info("%s", plan),
            )
            record.update(
                status="ok",
                error=None,
                frames=result.frames,
                width=result.width,
                height=result.height,
                fps=result.fps,
            )
            log.info("ok: wrote %s", ", ".join(str(path) for path in job.targets()))
        except ModelsUnavailable as error:
            log.info("stopped: %s", error)
            raise
        except RelightVidError as error:
            record.update(status="failed", error=str(error))
            log.info("failed: %s", error)
        except Exception as error:  # a fault of ours or of the machine (out of memory …): this job fails, not the batch
            record.update(status="failed", error=f"{type(error).__name__}: {error}".rstrip())
            log.info("failed:\n%s", traceback.format_exc())
        finally:
            library.removeHandler(handler)
            library.setLevel(saved[0])
            library.propagate = saved[1]
            handler.close()
            self._release()
        record.update(
            seconds=round(time.perf_counter() - start, 3), worker=self.worker(), memory_mb=memory_mb(), finished=_now()
        )
        return record

    def _step(self, row: int, info: StepInfo, log: logging.Logger) -> None:
        log.info("step %d/%d", info.index + 1, info.total)
        if self.on_step is not None:
            self.on_step(row, info)

    def _release(self) -> None:
        """Free what the job left (its tensors, the CUDA cache), so memory does not grow from job to job."""
        gc.collect()
        if self.device is not None and self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()
