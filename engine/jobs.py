"""Job-wide progress and the words for a photo a job never tags: what every front end shows.

A protect run is a recorded job (engine.batch, its options an engine.spec.JobSpec); progress is
counted over the whole job, so a resumed job's bar starts where the last run stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ALREADY_IN_OUTPUT = "already in the output folder; not tagged again"


@dataclass(frozen=True)
class JobProgress:
    done: int  # photos finished in the whole job
    total: int
    faces_done: int
    path: Path | None  # the photo being worked on
    elapsed: float  # seconds since the job (or this run of a resumed job) started
    before: int = 0  # photos a resumed job had finished before this run

    def rate(self) -> float | None:
        """Photos per second in this run; None before the first one."""
        ran = self.done - self.before
        return ran / self.elapsed if ran > 0 and self.elapsed > 0 else None

    def seconds_left(self) -> float | None:
        """Linear estimate from the photos finished so far; None before the first one."""
        rate = self.rate()
        if rate is None or self.done >= self.total:
            return None
        return (self.total - self.done) / rate
