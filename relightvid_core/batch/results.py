"""``results.jsonl``: one JSON object per finished job, appended the moment it finishes.

Each line is written whole and flushed to disk before the next job is reported, so a driver that crashes
loses no finished row; a line cut short by a crash mid-write is skipped when the file is read back. The file
is also the batch's memory: a rerun skips every job whose last ``ok`` line has the same settings key and
whose files still exist.

A line has at least ``row``, ``status`` (``ok`` or ``failed``), ``output``, ``error`` (the sentence, for
``failed``), ``seed``, ``seconds`` and ``worker`` (host and device); see
:meth:`relightvid_core.batch.worker.JobRunner.run`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RESULTS_NAME = "results.jsonl"
LOGS_NAME = "logs"


class ResultsFile:
    """The results of the batch writing into ``out``."""

    def __init__(self, out: Path):
        self.path = out / RESULTS_NAME

    def records(self) -> list[dict[str, Any]]:
        """Every whole line written so far, oldest first."""
        if not self.path.is_file():
            return []
        records = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s line %d is not whole (cut short by a crash?); skipped", self.path, number)
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last record of each settings key."""
        return {record["settings"]: record for record in self.records() if "settings" in record}

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one record as one line, on disk before this returns (the folder is made if needed)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(record, sort_keys=True) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
