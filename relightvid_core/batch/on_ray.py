"""A batch on a Ray cluster, with Ray Data's actor pool: one model replica per worker, jobs streamed to
whichever worker frees up.

Imported only when a Ray run is asked for (it imports Ray at once). The jobs become a dataset of one block
per job, mapped by :class:`_RayWorker` — a :class:`~relightvid_core.batch.worker.JobRunner` per actor, which
loads the models at its first job — with one job in flight per worker, so a job waits for a free worker rather
than in the queue of a busy one. Results stream back to the driver as they finish.

Faults are Ray's to handle: an actor that dies (its process crashed, its machine was lost) is restarted and
its job submitted again, on whichever node has room. Ray Data retries without limit; a small actor on the
driver's node, :class:`_Board`, counts each job's attempts so that a job whose worker keeps dying ends
``failed`` after ``retries`` retries instead of looping, and tells the driver which jobs are running.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import ray
import ray.data
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..errors import InputError
from .interfaces import BatchEvents, RaySettings
from .plan import BatchJob
from .worker import JobRunner, ModelsUnavailable, RunnerConfig

logger = logging.getLogger(__name__)
POLL_SECONDS = 1.0  # how often the driver asks which jobs are running
PROBE_SECONDS = 5.0  # one connection attempt to a cluster's address before Ray's own, much longer, retries


@ray.remote(num_cpus=0)
class _Board:
    """Attempts and running jobs, kept on the driver's node (a worker's node may be lost)."""

    def __init__(self) -> None:
        self.attempts: dict[int, int] = {}
        self.running: set[int] = set()

    def begin(self, row: int) -> int:
        self.attempts[row] = self.attempts.get(row, 0) + 1
        self.running.add(row)
        return self.attempts[row]

    def end(self, row: int) -> None:
        self.running.discard(row)

    def running_rows(self) -> list[int]:
        return sorted(self.running)


class _RayWorker:
    """One Ray Data actor: runs each job of its batches with its own :class:`JobRunner`."""

    def __init__(self, config: dict[str, Any], board: Any, retries: int):
        self.runner = JobRunner(
            RunnerConfig.from_dict(config), where={"node": ray.get_runtime_context().get_node_id()[:12]}
        )
        self.board = board
        self.retries = retries

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        return {"result": [json.dumps(self._run(BatchJob.from_json(str(text)))) for text in batch["job"]]}

    def _run(self, job: BatchJob) -> dict[str, Any]:
        attempt = ray.get(self.board.begin.remote(job.row))
        try:
            return self.attempt(job, attempt)
        finally:
            self.board.end.remote(job.row)

    def attempt(self, job: BatchJob, attempt: int) -> dict[str, Any]:
        """Run attempt number ``attempt`` of ``job``, unless its earlier workers were lost too often."""
        if attempt > self.retries + 1:
            return _lost_too_often(job, attempt - 1, self.retries)
        try:
            return self.runner.run(job, attempt)
        except ModelsUnavailable as error:
            return {"row": job.row, "fatal": str(error)}


def _lost_too_often(job: BatchJob, lost: int, retries: int) -> dict[str, Any]:
    return {
        "row": job.row,
        "status": "failed",
        "output": job.output,
        "contact_sheet": job.contact_sheet,
        "latent": job.latent,
        "error": (
            f"the job's worker was lost {lost} times (a crashed process or a lost machine); "
            f"it is not run again after {retries} retries (--retries)."
        ),
        "seed": job.seed,
        "seed_drawn": job.seed_drawn,
        "settings": job.key,
        "attempt": lost + 1,
        "seconds": 0.0,
        "worker": None,
    }


def _check_answers(address: str) -> None:
    """One short connection to ``host:port``: Ray's own client retries an address where nothing listens for
    minutes, so a mistyped address would look like a hang.

    Raises:
        InputError: nothing answers there.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--ray {address}: expected auto, local or HOST:PORT (e.g. 10.0.0.5:6379).")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
    except OSError as error:
        raise InputError(
            f"--ray {address}: nothing answers at {host}:{port} ({error.strerror or error}); start the cluster "
            "there (`ray start --head`) or give the address `ray start` printed."
        ) from error


def _connect(settings: RaySettings) -> bool:
    """Connect this process to the cluster; True if it was not connected before (and so disconnects after).

    Raises:
        InputError: no cluster answers at the address.
    """
    if ray.is_initialized():
        return False
    if settings.address not in ("auto", "local"):
        _check_answers(settings.address)
    quiet = {"logging_level": logging.INFO if settings.verbose else logging.ERROR, "log_to_driver": settings.verbose}
    try:
        if settings.address == "local":
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=settings.address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as error:
        if settings.address == "auto":
            raise InputError(
                "--ray auto: this machine belongs to no running Ray cluster; start one (`ray start --head`), join "
                "one (`ray start --address HEAD:6379`), or use --ray local."
            ) from error
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"--ray {settings.address}: no Ray cluster could be joined there ({first_line}).") from error
    return True


def _capacity(need: str, per_worker: float) -> int:
    """How many workers that each hold ``per_worker`` of resource ``need`` fit on the cluster's live nodes."""
    return sum(
        math.floor(node["Resources"].get(need, 0.0) / per_worker + 1e-9) for node in ray.nodes() if node.get("Alive")
    )


def _worker_shape(settings: RaySettings) -> tuple[float, float, int]:
    """(GPUs, CPUs) per worker and how many workers the cluster can hold now.

    Raises:
        InputError: GPUs asked of a cluster without any, or a worker no node can hold.
    """
    total = ray.cluster_resources()
    gpus = (
        settings.gpus_per_worker if settings.gpus_per_worker is not None else (1.0 if total.get("GPU", 0) >= 1 else 0.0)
    )
    if gpus > 0 and total.get("GPU", 0) == 0:
        raise InputError(
            f"--gpus-per-worker {gpus:g}: the Ray cluster has no GPU; give --gpus-per-worker 0 to run on its CPUs."
        )
    if settings.cpus_per_worker is not None:
        cpus = settings.cpus_per_worker
    elif gpus > 0:
        cpus = 1.0
    else:  # a CPU worker uses every core of its node: torch's kernels are threaded
        cpus = max((node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")), default=0.0)
    capacity = _capacity("GPU", gpus) if gpus > 0 else _capacity("CPU", cpus) if cpus > 0 else 0
    if capacity == 0:
        what = f"{gpus:g} GPU(s)" if gpus > 0 else f"{cpus:g} CPU(s)"
        raise InputError(
            f"no node of the Ray cluster has {what} for one worker; lower --gpus-per-worker or --cpus-per-worker."
        )
    return gpus, cpus, capacity


def _data_context() -> None:
    """Ray Data's own bars and statistics off: the driver shows one bar over the jobs."""
    with warnings.catch_warnings():
        # Ray Data's context warns about its own deprecated fields when it is first built; we set none of them.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data\.context")
        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_auto_log_stats = False
    context.print_on_execution_start = False


def run_on_ray(
    jobs: Sequence[BatchJob],
    config: RunnerConfig,
    settings: RaySettings,
    events: BatchEvents,
    record: Callable[[dict[str, Any]], None],
) -> None:
    """Run ``jobs`` on the cluster, passing each finished record to ``record`` as it arrives.

    Raises:
        InputError: the cluster cannot be joined, or cannot hold one worker of the asked shape.
        ModelsUnavailable: a worker cannot load the models (the batch stops).
        KeyboardInterrupt: interrupted (the cluster's workers for this batch are stopped).
    """
    owned = _connect(settings)
    stop = threading.Event()
    try:
        gpus, cpus, capacity = _worker_shape(settings)
        least, most = settings.workers or (1, capacity)
        most = min(most, len(jobs))
        least = min(least, most)
        # A CPU worker's torch uses as many threads as the worker holds CPUs.
        threads = None if gpus > 0 else max(1, int(cpus))
        worker_config = RunnerConfig(config.models, config.dtype, "cuda" if gpus > 0 else "cpu", config.out, threads)
        _data_context()
        board = _Board.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        ).remote()
        dataset = ray.data.from_items([{"job": job.to_json()} for job in jobs], override_num_blocks=len(jobs))
        relit = dataset.map_batches(
            _RayWorker,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(
                min_size=least, max_size=most, initial_size=most, max_tasks_in_flight_per_actor=1
            ),
            fn_constructor_kwargs={"config": worker_config.to_dict(), "board": board, "retries": settings.retries},
            num_cpus=cpus,
            num_gpus=gpus,
        )
        poller = threading.Thread(target=_poll, args=(board, events, stop), daemon=True)
        poller.start()
        for row in relit.iter_rows():
            entry = json.loads(row["result"])
            if "fatal" in entry:
                raise ModelsUnavailable(entry["fatal"])
            record(entry)
    finally:
        stop.set()
        if owned:
            try:
                ray.shutdown()
            except Exception:  # noqa: BLE001 - the batch is over either way; its own outcome must not be masked
                logger.exception("Ray did not shut down cleanly")


def _poll(board: Any, events: BatchEvents, stop: threading.Event) -> None:
    while not stop.wait(POLL_SECONDS):
        try:
            events.running(ray.get(board.running_rows.remote(), timeout=POLL_SECONDS * 5))
        except Exception:  # the cluster is going away (shutdown, interrupt): the bar just stops updating
            return
