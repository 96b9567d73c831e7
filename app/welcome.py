"""First start: create the user's identity (name + passphrase twice) or restore a key backup.

Key generation and restore run scrypt, so they go to a worker and the dialog stays responsive.
The dialog is opened with ``open()``; tests fill the fields and click the buttons with qtbot.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.passphrase import NewPassphraseForm
from engine.identity import name_problem

INTRO = ("<h2>Welcome to FakeTagger</h2><p>FakeTagger hides an invisible owner tag in each face "
         "of your photos, signed with a key that only you hold. First, create that key: give it "
         "your name (others see it when they check a photo) and a passphrase that protects "
         "it on this computer.</p>")


class WelcomeDialog(QDialog):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setWindowTitle("Welcome to FakeTagger")
        self.setMinimumWidth(480)
        lay = QVBoxLayout(self)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        lay.addWidget(intro)

        self.create_choice = QRadioButton("Create my identity")
        self.restore_choice = QRadioButton("Restore from a key backup")
        self.create_choice.setChecked(True)
        choices = QHBoxLayout()
        choices.addWidget(self.create_choice)
        choices.addWidget(self.restore_choice)
        choices.addStretch()
        lay.addLayout(choices)

        self.pages = QStackedWidget()
        self.pages.addWidget(self._create_page())
        self.pages.addWidget(self._restore_page())
        lay.addWidget(self.pages)
        self.create_choice.toggled.connect(lambda on: self.pages.setCurrentIndex(0 if on else 1))

        self.message = QLabel()
        self.message.setObjectName("welcomeMessage")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.buttons = QDialogButtonBox()
        self.ok_button = self.buttons.addButton("Create identity",
                                                QDialogButtonBox.ButtonRole.AcceptRole)
        self.later_button = self.buttons.addButton("Later", QDialogButtonBox.ButtonRole.RejectRole)
        self.ok_button.clicked.connect(self.submit)
        self.later_button.clicked.connect(self.reject)
        self.create_choice.toggled.connect(
            lambda on: self.ok_button.setText("Create identity" if on else "Restore"))
        lay.addWidget(self.buttons)

    def _create_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName("Your name")
        self.name_edit.setPlaceholderText("e.g. Ada Example")
        form.addRow("Name:", self.name_edit)
        self.new_pass = NewPassphraseForm()
        form.addRow(self.new_pass)
        return page

    def _restore_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.backup_edit = QLineEdit()
        self.backup_edit.setAccessibleName("Backup file")
        browse = QPushButton("Choose…")
        browse.setAccessibleName("Choose backup file")
        browse.clicked.connect(self._browse)
        row.addWidget(self.backup_edit)
        row.addWidget(browse)
        form.addRow("Backup file:", row)
        self.restore_pass = QLineEdit()
        self.restore_pass.setEchoMode(QLineEdit.EchoMode.Password)
        self.restore_pass.setAccessibleName("Backup passphrase")
        form.addRow("Passphrase:", self.restore_pass)
        return page

    def _browse(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Key backup", "", "Key backups (*.json);;All (*)")
        if name:
            self.backup_edit.setText(name)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def submit(self) -> None:
        """Check the form, then create or restore on a worker; accept when it succeeded."""
        if self.create_choice.isChecked():
            name = self.name_edit.text().strip()
            problem = name_problem(name) or self.new_pass.problem()
            if problem:
                self._say(problem[0].upper() + problem[1:])
                return
            passphrase = self.new_pass.passphrase()
            job = lambda report, token: self.ctx.ledger.create_identity(name, passphrase)  # noqa: E731
            busy = "Creating your key…"
        else:
            path = Path(self.backup_edit.text().strip())
            passphrase = self.restore_pass.text()
            if not path.is_file():
                self._say("Choose the backup file.")
                return
            try:
                data = path.read_bytes()
            except OSError as err:
                self._say(f"Cannot read {path.name}: {err.strerror}")
                return
            job = lambda report, token: self.ctx.ledger.restore_backup(data, passphrase)  # noqa: E731
            busy = "Restoring your key…"
        self._say(busy)
        self.ok_button.setEnabled(False)
        self.ctx.submit(job, on_result=self._done, on_error=self._failed, name="identity")

    def _done(self, ident) -> None:
        self.created = ident
        self.ctx.identityChanged.emit()
        self.accept()

    def _failed(self, message: str, _details: str) -> None:
        self.ok_button.setEnabled(True)
        self._say(message[0].upper() + message[1:] if message else "That did not work.")
