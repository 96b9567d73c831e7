"""Importing a contact's public card: the one implementation behind the Identity tab's "Import
card…" and the Verify tab's "Import owner's card…".

Why shared: both buttons must check a card the same way (the engine validates every signature,
which takes long enough on a big card to freeze the window if done on the GUI thread), store it
the same way, and tell every tab through ``ctx.contactsChanged`` so the contacts table and the
Verify view refresh wherever the import started.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QWidget

from app import errors_ui
from app.context import AppContext
from app.workers import Task
from engine.files import read_file
from engine.store.contacts import Contact

FAIL_TITLE = "Card not imported"
#: ``done(ok, message)``: runs in the GUI thread after the import ended (message: what happened).
Done = Callable[[bool, str], None]


def imported_message(contact: Contact) -> str:
    """What the person should read after an import, fingerprint included: a card proves only
    that its key signed it, so the fingerprint must be compared with its owner out of band."""
    return (f"Imported {contact.name} ({contact.key_id}) with {contact.record_count} signed "
            f"tag records. Compare the fingerprint {contact.fingerprint} with them over a channel "
            "you trust.")


def import_card(ctx: AppContext, parent: QWidget, path: Path, done: Done | None = None) -> Task:
    """Read and import the card at *path* on a worker. On success ``ctx.contactsChanged`` fires,
    then ``done(True, message)``; on failure an error box (owned by *parent*) says why and that
    nothing was stored, then ``done(False, engine message)``."""

    def ok(contact: Contact) -> None:
        ctx.contactsChanged.emit()
        if done is not None:
            done(True, imported_message(contact))

    def failed(message: str, details: str) -> None:
        errors_ui.show_error(parent, FAIL_TITLE, f"{path.name}: {message}\n\nNothing was stored.",
                             details)
        if done is not None:
            done(False, message)

    return ctx.submit(lambda report, token: ctx.ledger.import_card(read_file(path)),
                      on_result=ok, on_error=failed, name="import card", owner=parent)
