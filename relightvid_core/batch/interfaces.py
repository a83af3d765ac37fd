"""The two things a batch run is told from outside: how to use a Ray cluster (:class:`RaySettings`), and whom
to tell how it goes (:class:`BatchEvents`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..sampling import StepInfo


@dataclass(frozen=True)
class RaySettings:
    """How a batch runs on a Ray cluster.

    Attributes:
        address: ``auto`` (the cluster this machine belongs to), ``local`` (start one here) or a cluster's
            address (``host:port``, ``ray://host:port``).
        workers: (least, most) workers; None: one per GPU (or per ``cpus_per_worker`` CPUs) the cluster has.
        gpus_per_worker: GPUs each worker holds (fractions share a card); None: 1 on a cluster with GPUs, else 0.
        cpus_per_worker: CPUs each worker holds; None: 1 beside a GPU, else the CPUs of the cluster's largest node.
        retries: how often a job whose worker was lost (a crash, a lost machine) runs again.
        verbose: let Ray's own logs reach the terminal.
    """

    address: str
    workers: tuple[int, int] | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float | None = None
    retries: int = 3
    verbose: bool = False


class BatchEvents(Protocol):
    """What the batch tells whoever shows its progress."""

    def running(self, rows: Sequence[int]) -> None:
        """The rows being relit now."""

    def step(self, row: int, info: StepInfo) -> None:
        """A sampling step of ``row`` finished (only for jobs run in this process)."""

    def finished(self, record: dict[str, Any]) -> None:
        """A job ended with this results record."""
