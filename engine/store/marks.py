"""Serial high-water marks: ``keys/<key id hex>.serial`` beside each key file.

The mark survives the ledger: a ledger put back from a backup (or rebuilt from a key backup)
must continue after every serial that may be in a published file. The mark is written *before*
the SQLite transaction that hands out serials commits, so a kill can leave a mark ahead of the
ledger. To tell "killed before the commit" (nothing was handed out: nothing to burn) from "the
ledger is older than the mark" (restored or replaced: the serials above its counter may be in
the wild), each allocating transaction draws a fresh *generation* and stores it in the ledger
(``identities.serial_gen``) in the same transaction. The mark says which ledger state it follows:

``<next> <gen> <prev>``  (pending)
    written inside the transaction, before its commit. The ledger was at generation *prev*
    (``-`` for none yet) and moves to *gen* when the transaction commits.
``<next> <gen>``  (confirmed)
    rewritten after the commit, under the ledger's write lock, once the ledger holds *gen*.
``<next>``  (legacy, before generations)
    still read: the counter is raised to it, as before.

On open (:func:`reconcile`): a mark of the ledger's own generation, or a pending one whose *prev*
is the ledger's generation (the transaction never committed), needs nothing. Any other mark means
the ledger does not hold the latest allocations: the counter is raised past the mark and the free
list is dropped (a serial freed in the old ledger may have been reused since), both burned on
purpose. A pending mark is confirmed before any serial it covers leaves ``begin_tags``, so a
pending mark whose transaction did commit only covers serials no caller ever received.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

_MAX_DIGITS = 8


@dataclass(frozen=True)
class Mark:
    next: int  # the next serial: every serial below it may have been handed out
    gen: str | None  # None: a legacy mark (a bare number)
    prev: str | None = None  # a pending mark: the ledger's generation before the transaction
    pending: bool = False


@dataclass(frozen=True)
class Fix:
    """What opening the ledger must change for one identity."""

    raise_to: int  # the counter becomes at least this
    drop_free: bool  # the free list may hold serials used since: burn them
    adopt_gen: str | None  # the ledger takes the mark's generation (then they agree)


def _is_gen(text: str) -> bool:
    return len(text) == 16 and all(ch in "0123456789abcdef" for ch in text)


def parse(text: str) -> Mark | None:
    """A mark file's text; None when it is not a mark (treated as no mark)."""
    parts = text.split()
    if not parts or not parts[0].isdigit() or len(parts[0]) > _MAX_DIGITS or len(parts) > 3:
        return None
    value = int(parts[0])
    if len(parts) == 1:
        return Mark(value, None)
    if not _is_gen(parts[1]):
        return None
    if len(parts) == 2:
        return Mark(value, parts[1])
    if parts[2] != "-" and not _is_gen(parts[2]):
        return None
    return Mark(value, parts[1], None if parts[2] == "-" else parts[2], pending=True)


def new_gen() -> str:
    return secrets.token_hex(8)


def pending_text(next_serial: int, gen: str, prev: str | None) -> bytes:
    return f"{next_serial} {gen} {prev or '-'}\n".encode("ascii")


def confirmed_text(next_serial: int, gen: str) -> bytes:
    return f"{next_serial} {gen}\n".encode("ascii")


def uncommitted(mark: Mark, gen: str | None) -> bool:
    """The mark was written by a transaction that never committed on this ledger."""
    return mark.pending and mark.gen != gen and mark.prev == gen


def next_value(mark: Mark | None, gen: str | None, counter_after: int) -> int:
    """The next serial a new mark records: the counter after the transaction, and never below
    the old mark, except an uncommitted one (its serials were never handed out)."""
    if mark is None or uncommitted(mark, gen):
        return counter_after
    return max(counter_after, mark.next)


def reconcile(mark: Mark | None, counter: int, gen: str | None) -> Fix | None:
    """What the ledger (counter *counter*, generation *gen*) must change to agree with *mark*."""
    if mark is None:
        return None
    if mark.gen is None:  # legacy: cannot tell a kill from a restore; raise, as before
        return Fix(mark.next, False, None) if mark.next > counter else None
    if mark.gen == gen:
        return Fix(mark.next, False, None) if mark.next > counter else None
    if uncommitted(mark, gen):
        return None
    return Fix(mark.next, True, mark.gen)
