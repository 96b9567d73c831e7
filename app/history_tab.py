"""History tab: every photo you tagged, from the local ledger, searchable, with face thumbnails.

The rows come from ``Ledger.history(search)`` (the engine does the search, so the GUI and the
CLI ``history`` command always agree). Exporting selected rows writes a *public card* holding only
those signed records: the project's one record format, which anyone can import and check offline,
rather than a second JSON dialect that nothing could verify.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app import errors_ui, prompts
from app.context import AppContext
from engine.display import file_stem_for, format_when
from engine.errors import FakeTaggerError
from engine.files import write_file
from engine.store.ledger import HistoryRow

THUMB = 48
COLUMNS = ("Face", "Date", "Original", "Tagged copy", "Faces", "Serials", "Identity")
HISTORY_LIMIT = 2000
_Index = QModelIndex | QPersistentModelIndex


class HistoryModel(QAbstractTableModel):
    """HistoryRow list as a table; thumbnails decoded once per row and cached."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[HistoryRow] = []
        self._thumbs: dict[int, QPixmap] = {}

    def set_rows(self, rows: list[HistoryRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self._thumbs.clear()
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def thumbnail(self, row: int) -> QPixmap | None:
        if row not in self._thumbs:
            pix = QPixmap()
            data = self.rows[row].thumbnail
            if not data or not pix.loadFromData(data, "JPEG"):
                return None
            self._thumbs[row] = pix.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation)
        return self._thumbs[row]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            return self.thumbnail(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return (None, format_when(r.created), Path(r.original_path).name,
                    Path(r.output_path).name, str(len(r.serials)),
                    ", ".join(map(str, r.serials)), f"{r.identity_name} ({r.key_id})")[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return (None, r.created, r.original_path, r.output_path, None,
                    f"Tag serials {', '.join(map(str, r.serials))}",
                    f"Key ID {r.key_id}")[col]
        if role == Qt.ItemDataRole.UserRole:  # sort keys
            return (r.created, r.created, r.original_path.lower(), r.output_path.lower(),
                    len(r.serials), r.serials[0] if r.serials else 0, r.identity_name)[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class HistoryTab(QWidget):
    """The ledger as a table. ``refreshed(count)`` fires after each reload (tests wait on it)."""

    refreshed = Signal(int)

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.model = HistoryModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search by file name, folder, identity or key ID")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search history")
        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        QShortcut(QKeySequence.StandardKey.Find, self, activated=self.search.setFocus)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setAccessibleName("Tagged photos")
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setIconSize(QSize(THUMB, THUMB))
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.activated.connect(lambda _i: self.open_output())  # double-click or Enter
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)

        self.count_label = QLabel()
        self.open_button = QPushButton("&Open tagged copy")
        self.original_button = QPushButton("Open o&riginal")
        self.reveal_button = QPushButton("Show in &folder")
        self.export_button = QPushButton("&Export selected records…")
        self.export_button.setToolTip("Save the signed records of the selected photos as a public "
                                      "card that others can import to verify them")
        self.open_button.clicked.connect(self.open_output)
        self.original_button.clicked.connect(self.open_original)
        self.reveal_button.clicked.connect(self.reveal_output)
        self.export_button.clicked.connect(self.export_selected)
        # The same actions on the table's right-click menu.
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self._menu: list[tuple[QPushButton, QAction]] = []
        for button in (self.open_button, self.original_button, self.reveal_button,
                       self.export_button):
            action = QAction(button.text().replace("&", ""), self.table)
            action.triggered.connect(button.click)
            self.table.addAction(action)
            self._menu.append((button, action))

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.count_label)
        buttons = QHBoxLayout()
        for b in (self.open_button, self.original_button, self.reveal_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        ctx.ledgerChanged.connect(self.refresh)
        ctx.identityChanged.connect(self.refresh)
        self.refresh()

    # -- data ---------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload from the ledger with the current search text (an indexed SQLite query, fast
        enough for the GUI thread at HISTORY_LIMIT rows)."""
        term = self.search.text()
        rows = self.ctx.ledger.history(term, limit=HISTORY_LIMIT)
        self.model.set_rows(rows)
        if rows:
            self.count_label.setText(f"{len(rows)} tagged photo{'s' if len(rows) != 1 else ''}")
        else:
            self.count_label.setText("No match" if term.strip() else "Nothing tagged yet")
        self._update_buttons()
        self.refreshed.emit(len(rows))

    def selected_rows(self) -> list[HistoryRow]:
        picked = self.table.selectionModel().selectedRows()
        return [self.model.rows[self.proxy.mapToSource(i).row()] for i in picked]

    def _update_buttons(self) -> None:
        picked = self.selected_rows()
        one = len(picked) == 1
        for b in (self.open_button, self.original_button, self.reveal_button):
            b.setEnabled(one)
        self.export_button.setEnabled(bool(picked))
        for button, action in self._menu:
            action.setEnabled(button.isEnabled())

    # -- actions ------------------------------------------------------------------------------

    def _open(self, path: str, what: str) -> bool:
        if not path or not Path(path).exists():
            errors_ui.show_error(self, "File not found",
                                 f"The {what} is no longer at {path or '(unknown)'}; it was "
                                 "moved or deleted.")
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).resolve())))

    def _one(self) -> HistoryRow | None:
        picked = self.selected_rows()
        return picked[0] if len(picked) == 1 else None

    def open_output(self) -> None:
        row = self._one()
        if row is not None:
            self._open(row.output_path, "tagged copy")

    def open_original(self) -> None:
        row = self._one()
        if row is not None:
            self._open(row.original_path, "original photo")

    def reveal_output(self) -> None:
        """Open the tagged copy's folder in the file manager (portable; no per-OS selection)."""
        row = self._one()
        if row is not None:
            self._open(str(Path(row.output_path).parent), "folder of the tagged copy")

    def export_selected(self) -> None:
        picked = self.selected_rows()
        keys = {r.key_id for r in picked}
        if len(keys) != 1:
            if keys:
                errors_ui.show_error(self, "Export records",
                                     "Select photos tagged by one identity at a time: each "
                                     "export is that identity's public card.")
            return
        key_id = keys.pop()
        serials = {s for r in picked for s in r.serials}
        name = picked[0].identity_name
        path = prompts.save_file(self, "Export selected records",
                                 f"{file_stem_for(name)}-{len(picked)}-photos.card.json",
                                 prompts.CARD_FILTER)
        if path is None:
            return
        try:
            write_file(path, self.ctx.ledger.export_card(key_id, serials=serials), overwrite=True)
        except FakeTaggerError as err:
            errors_ui.show_error(self, "Records not exported", str(err))
            return
        errors_ui.show_info(self, "Records exported",
                            f"Saved {len(serials)} signed tag record(s) of {len(picked)} photo(s) "
                            f"to {path}. Anyone can import this card to verify those photos.")
