"""Identity tab: who you are (key ID, fingerprint), your public card, key backups, passphrase,
and the contacts whose cards you imported.

Every engine call that touches files or runs scrypt (restore, change passphrase) or checks many
signatures (card import/export) goes through ``ctx.submit`` so the window never freezes; the
result comes back as a status line, or as an error box saying what went wrong and that nothing
was stored. The engine does all validation: this tab only collects choices and shows results.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import card_import, errors_ui, prompts
from app.context import AppContext
from app.passphrase_change import ChangePassphraseDialog
from engine.display import file_stem_for, format_when
from engine.files import read_file, write_file
from engine.identity import Identity
from engine.store.contacts import Contact

CONTACT_COLUMNS = ("Name", "Key ID", "Fingerprint", "Imported", "Tag records")


def _copy_row(field: QLineEdit, what: str) -> QWidget:
    """A read-only value with a copy button beside it (fingerprints are compared out of band)."""
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    field.setReadOnly(True)
    field.setAccessibleName(what)
    button = QToolButton()
    button.setText("Copy")
    button.setToolTip(f"Copy the {what.lower()} to the clipboard")
    button.setAccessibleName(f"Copy {what.lower()}")
    button.clicked.connect(lambda: QGuiApplication.clipboard().setText(field.text()))
    lay.addWidget(field, 1)
    lay.addWidget(button)
    lay.addStretch(1)
    return row


class IdentityTab(QWidget):
    """Your identity and your contacts. ``workDone(ok, message)`` fires when a background action
    ends (the status line shows the same message); tests wait on it."""

    workDone = Signal(bool, str)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.passphrase_dialog: ChangePassphraseDialog | None = None
        self._busy = False

        layout = QVBoxLayout(self)
        layout.addWidget(self._build_identity_box())
        layout.addWidget(self._build_contacts_box(), 1)
        self.status = QLabel()
        self.status.setObjectName("identityStatus")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)

        ctx.identityChanged.connect(self.refresh_identity)
        ctx.ledgerChanged.connect(self.refresh_identity)  # serials left
        ctx.contactsChanged.connect(self.refresh_contacts)
        self.refresh_identity()
        self.refresh_contacts()

    # -- layout -------------------------------------------------------------------------------

    def _build_identity_box(self) -> QGroupBox:
        box = QGroupBox("Your identity")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.name_label = QLabel()
        self.name_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.key_id_field = QLineEdit()
        self.key_id_field.setFont(mono)
        self.key_id_field.setMaximumWidth(self.key_id_field.fontMetrics().horizontalAdvance(
            "0000-0000") + 24)
        self.fingerprint_field = QLineEdit()
        self.fingerprint_field.setFont(mono)
        self.fingerprint_field.setMinimumWidth(
            self.fingerprint_field.fontMetrics().horizontalAdvance("0000 " * 10) + 24)
        self.fingerprint_field.setMaximumWidth(self.fingerprint_field.minimumWidth() + 40)
        self.details_label = QLabel()
        self.identity_combo = QComboBox()
        self.identity_combo.setAccessibleName("Identity used for new tags")
        self.identity_combo.setToolTip("You have several identities; new tags are signed with "
                                       "the one chosen here")
        self.identity_combo.activated.connect(self._choose_identity)
        form = self.identity_form = QFormLayout()
        form.addRow("Sign as:", self.identity_combo)
        form.addRow("Name:", self.name_label)
        form.addRow("Key ID:", _copy_row(self.key_id_field, "Key ID"))
        form.addRow("Fingerprint:", _copy_row(self.fingerprint_field, "Fingerprint"))
        form.addRow("", self.details_label)

        self.export_button = QPushButton("&Export public card…")
        self.export_button.setToolTip("Save your public card to share with people who verify "
                                      "your photos")
        self.include_records = QCheckBox("Include my signed tag records")
        self.include_records.setChecked(True)
        self.include_records.setToolTip("Lets others check your tags offline, photo by photo")
        self.backup_button = QPushButton("&Back up key…")
        self.backup_button.setToolTip("Save your key, still encrypted with your passphrase")
        self.restore_button = QPushButton("&Restore backup…")
        self.passphrase_button = QPushButton("Change &passphrase…")
        self.export_button.clicked.connect(self.export_card)
        self.backup_button.clicked.connect(self.backup_key)
        self.restore_button.clicked.connect(self.restore_backup)
        self.passphrase_button.clicked.connect(self.change_passphrase)

        card_row = QHBoxLayout()
        card_row.addWidget(self.export_button)
        card_row.addWidget(self.include_records)
        card_row.addStretch(1)
        key_row = QHBoxLayout()
        for button in (self.backup_button, self.restore_button, self.passphrase_button):
            key_row.addWidget(button)
        key_row.addStretch(1)
        lay = QVBoxLayout(box)
        lay.addLayout(form)
        lay.addLayout(card_row)
        lay.addLayout(key_row)
        return box

    def _build_contacts_box(self) -> QGroupBox:
        box = QGroupBox("Contacts (imported public cards)")
        self.contacts = QTableWidget(0, len(CONTACT_COLUMNS))
        self.contacts.setHorizontalHeaderLabels(CONTACT_COLUMNS)
        self.contacts.setAccessibleName("Contacts")
        self.contacts.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.contacts.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.contacts.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.contacts.verticalHeader().setVisible(False)
        header = self.contacts.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.contacts.itemSelectionChanged.connect(self._update_buttons)
        QShortcut(QKeySequence.StandardKey.Delete, self.contacts, activated=self.remove_contact)
        self.empty_contacts = QLabel(
            "No contacts yet. Import the public card of someone whose photos you want to verify.")
        self.empty_contacts.setWordWrap(True)
        self.import_button = QPushButton("&Import card…")
        self.import_button.setToolTip("Add a contact from their public card; it is checked first")
        self.remove_button = QPushButton("Re&move contact…")
        self.import_button.clicked.connect(self.import_card)
        self.remove_button.clicked.connect(self.remove_contact)
        buttons = QHBoxLayout()
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        lay = QVBoxLayout(box)
        lay.addWidget(self.empty_contacts)
        lay.addWidget(self.contacts, 1)
        lay.addLayout(buttons)
        return box

    # -- refresh ------------------------------------------------------------------------------

    def identity(self) -> Identity | None:
        return self.ctx.identity()

    def refresh_identity(self) -> None:
        ident = self.identity()
        idents = self.ctx.ledger.list_identities()
        self.identity_combo.clear()
        for other in idents:
            self.identity_combo.addItem(f"{other.name} ({other.key_id})", other.key_id.hex())
        if ident is not None:
            self.identity_combo.setCurrentIndex(self.identity_combo.findData(ident.key_id.hex()))
        self.identity_form.setRowVisible(0, len(idents) > 1)
        if ident is None:
            self.name_label.setText("<i>No identity yet</i> — create one in the welcome dialog "
                                    "or restore a backup.")
            self.key_id_field.clear()
            self.fingerprint_field.clear()
            self.details_label.clear()
        else:
            self.name_label.setText(f"<b>{html.escape(ident.name)}</b>")
            self.key_id_field.setText(ident.key_id.text)
            self.fingerprint_field.setText(ident.fingerprint)
            left = self.ctx.ledger.serials_left(ident.key_id)
            self.details_label.setText(
                f"Created {format_when(ident.created)} · {left:,} tag serials left")
        self._update_buttons()

    def refresh_contacts(self) -> None:
        contacts = self.ctx.ledger.list_contacts()
        self.contacts.setRowCount(len(contacts))
        for row, c in enumerate(contacts):
            cells = (c.name, c.key_id.text, c.fingerprint, format_when(c.imported),
                     str(c.record_count))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                item.setData(Qt.ItemDataRole.UserRole, c.key_id.hex())
                self.contacts.setItem(row, col, item)
        self.empty_contacts.setVisible(not contacts)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has_id = self.identity() is not None
        idle = not self._busy
        for button in (self.export_button, self.backup_button, self.passphrase_button):
            button.setEnabled(has_id and idle)
        self.include_records.setEnabled(has_id)
        self.restore_button.setEnabled(idle)
        self.import_button.setEnabled(idle)
        self.remove_button.setEnabled(idle and self.selected_contact() is not None)

    def _choose_identity(self, index: int) -> None:
        key_id = self.identity_combo.itemData(index)  # hex text: QVariant mangles some bytes
        ident = self.identity()
        if key_id and (ident is None or ident.key_id.hex() != key_id):
            self.ctx.ledger.set_default(key_id)
            self.ctx.identityChanged.emit()

    def selected_contact(self) -> Contact | None:
        rows = self.contacts.selectionModel().selectedRows()
        if not rows:
            return None
        key_id = self.contacts.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
        return self.ctx.ledger.get_contact(key_id)

    # -- background runner --------------------------------------------------------------------

    def _start(self, doing: str) -> None:
        self._busy = True
        self._update_buttons()
        self.status.setText(doing)

    def _finish(self, ok: bool, message: str, status: str = "") -> None:
        """End of a background action: the tab is usable again; the status line shows *status*
        (default: *message*) and ``workDone(ok, message)`` fires."""
        self._busy = False
        self.status.setText(status or message)
        self._update_buttons()
        self.workDone.emit(ok, message)

    def _run(self, doing: str, fail_title: str, work: Callable[[], object],
             done: Callable[[object], str], subject: str = "") -> None:
        """Run *work* on the pool; *done(result)* (GUI thread) returns the status message. A
        failure shows an error box: "*subject*: engine message"."""
        self._start(doing)

        def failed(message: str, details: str) -> None:
            lead = f"{subject}: " if subject else ""
            errors_ui.show_error(self, fail_title, f"{lead}{message}", details)
            self._finish(False, message, f"{fail_title}: {message}")

        self.ctx.submit(lambda report, token: work(),
                        on_result=lambda value: self._finish(True, done(value)),
                        on_error=failed, name=fail_title)

    # -- actions ------------------------------------------------------------------------------

    def export_card(self) -> None:
        ident = self.identity()
        if ident is None:
            return
        path = prompts.save_file(self, "Export your public card",
                                 f"{file_stem_for(ident.name)}.card.json", prompts.CARD_FILTER)
        if path is None:
            return
        with_records = self.include_records.isChecked()

        def work() -> None:
            data = self.ctx.ledger.export_card(ident.key_id, include_records=with_records)
            write_file(path, data, overwrite=True)  # the save dialog already asked

        self._run("Exporting your public card…", "Card not exported", work,
                  lambda _: f"Exported your public card to {path}. Share it with people who "
                            "verify your photos.")

    def import_card(self) -> None:
        path = prompts.open_file(self, "Import a contact's public card", prompts.CARD_FILTER)
        if path is None:
            return
        self._start("Checking the card…")
        card_import.import_card(
            self.ctx, self, path,
            lambda ok, message: self._finish(ok, message,
                                             "" if ok else f"{card_import.FAIL_TITLE}: {message}"))

    def remove_contact(self) -> None:
        contact = self.selected_contact()
        if contact is None:
            return
        if not prompts.confirm(
            self, "Remove contact",
            f"Remove {contact.name} ({contact.key_id}) and their {contact.record_count} "
            "tag records? Their tags will show as 'unknown owner' until you import the card "
            "again."):
            return
        self.ctx.ledger.remove_contact(contact.key_id)
        self.ctx.contactsChanged.emit()
        message = f"Removed {contact.name} ({contact.key_id})."
        self.status.setText(message)
        self.workDone.emit(True, message)

    def backup_key(self) -> None:
        ident = self.identity()
        if ident is None:
            return
        path = prompts.save_file(self, "Back up your key",
                                 f"{file_stem_for(ident.name)}.backup.json",
                                 prompts.BACKUP_FILTER)
        if path is None:
            return

        def work() -> None:
            write_file(path, self.ctx.ledger.export_backup(ident.key_id), overwrite=True)

        self._run("Writing the backup…", "Backup failed", work,
                  lambda _: f"Backed up {ident.name} ({ident.key_id}) to {path}. The key "
                            "inside stays encrypted: you need this file and your passphrase to "
                            "restore it. Keep it somewhere safe, off this computer.")

    def restore_backup(self) -> None:
        path = prompts.open_file(self, "Restore a key backup", prompts.BACKUP_FILTER)
        if path is None:
            return
        passphrase = prompts.ask_secret(self, "Restore backup",
                                        f"Passphrase of the key in {Path(path).name}:")
        if passphrase is None:
            return

        def done(ident: object) -> str:
            assert isinstance(ident, Identity)
            self.ctx.identityChanged.emit()
            message = f"Restored {ident.name} ({ident.key_id})."
            current = self.identity()
            if current is not None and current.key_id != ident.key_id:
                message += (f" New tags are still signed as {current.name}; choose "
                            f"{ident.name} under “Sign as” to use the restored key.")
            return message

        self._run("Restoring (checking the passphrase)…", "Backup not restored",
                  lambda: self.ctx.ledger.restore_backup(read_file(path), passphrase), done,
                  subject=path.name)

    def change_passphrase(self) -> None:
        """Open the dialog (non-blocking: open(), not exec()); the change runs on accept."""
        ident = self.identity()
        if ident is None:
            return
        dialog = ChangePassphraseDialog(f"{ident.name} ({ident.key_id})", self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._change_passphrase(ident, *dialog.values()))
        dialog.destroyed.connect(lambda: setattr(self, "passphrase_dialog", None))
        self.passphrase_dialog = dialog
        dialog.open()

    def _change_passphrase(self, ident: Identity, old: str, new: str) -> None:
        def done(_: object) -> str:
            self.ctx.identityChanged.emit()
            return (f"Changed the passphrase of {ident.name}. Make a new backup: older ones "
                    "still open with the old passphrase.")

        self._run("Changing the passphrase…", "Passphrase not changed",
                  lambda: self.ctx.ledger.change_passphrase(ident.key_id, old, new), done)
