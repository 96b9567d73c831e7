"""The local runner: a job's photos one at a time, in this process, through the per-photo
sequence (engine.protect.sequence)."""

from __future__ import annotations

from collections.abc import Iterator

from engine.identity import UnlockedIdentity
from engine.pipeline import CancelToken, Pipeline, Progress
from engine.protect import ProtectOutcome, Reason
from engine.protect.sequence import protect_one
from engine.run.jobs import ROLL_MARGIN, Roll, finish_job, open_job, record_outcome, still_same
from engine.store.batches import BatchItem


def run_batch(
    pipeline: Pipeline, unlocked: UnlockedIdentity, job_id: str,
    cancel: CancelToken | None = None, roll: Roll | None = None,
) -> Iterator[Progress | ProtectOutcome]:
    """Every photo of the job not yet done; yields Progress and each photo's ProtectOutcome. The
    job is closed when none is left to do (failed ones stay for a resume). With *roll*, a photo
    the key has too few serials left for is tagged with the next key (a certified sub-key)."""
    cancel = cancel or CancelToken()
    ledger, tools = pipeline.ledger, pipeline.tools
    run = open_job(ledger, job_id)
    spec, todo, progress = run.spec, run.todo, run.progress

    def one(key: UnlockedIdentity, item: BatchItem) -> ProtectOutcome | None:
        return protect_one(tools, ledger, key, item.src, item.out_dir, spec, chosen=item.faces,
                           batch_job=job_id, cancelled=lambda: cancel.cancelled)

    yield progress.tick(None, None)
    yield from run.skipped
    for item in todo:
        if cancel.cancelled:
            break
        yield progress.tick(None, item.src)
        if roll is not None and ledger.serials_left(unlocked.key_id) == 0:
            unlocked = roll(ROLL_MARGIN)
        why = still_same(item)
        if why:
            outcome = ProtectOutcome(item.src, error=why, reason=Reason.CHANGED)
        else:
            outcome = one(unlocked, item)
            if roll is not None and outcome is not None \
                    and outcome.reason is Reason.OUT_OF_SERIALS:
                # The key ran out within this photo: the next key tags it (nothing was written
                # and the reserved serials were handed back).
                unlocked = roll(ROLL_MARGIN)
                outcome = one(unlocked, item)
            if outcome is None:
                break  # cancelled before anything was written
        yield record_outcome(ledger, job_id, item, outcome, spec)
        yield progress.tick(outcome, item.src)
    finish_job(ledger, job_id)
    ledger.checkpoint_backup()
