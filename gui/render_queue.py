"""The render queue: one row per retime job, with progress, cancel and "reveal output"."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import QUrl, pyqtSignal
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from gui.results import RenderOrder, RenderResult

COLUMNS = ("Output", "State", "Progress", "")
FINISHED = {"done", "failed", "cancelled", "unavailable"}


@dataclass
class QueueEntry:
    job_id: str
    order: RenderOrder
    state: str = "queued"
    message: str = ""
    outputs: list[Path] = field(default_factory=list)


class RenderQueue(QWidget):
    """Rows of render jobs; the window feeds it the engine link's job signals."""

    cancel_requested = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnWidth(2, 90)
        self.empty_label = QLabel(
            "No renders yet. Set In and Out (I, O), pick a target speed or draw a ramp, then Queue render."
        )
        self.empty_label.setWordWrap(True)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table)
        self.entries: dict[str, QueueEntry] = {}
        self._rows: dict[str, int] = {}

    def add(self, job_id: str, order: RenderOrder) -> None:
        entry = QueueEntry(job_id, order)
        self.entries[job_id] = entry
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._rows[job_id] = row
        name = QLabel(order.output.name)
        name.setToolTip(
            f"{order.source} → {order.output}\nsource frames {order.in_frame} to {order.out_frame - 1}, "
            f"{order.describe_speed()}, model {order.backend}"
        )
        self.table.setCellWidget(row, 0, name)
        self.table.setCellWidget(row, 1, QLabel("queued"))
        bar = QProgressBar()
        bar.setRange(0, 0)
        self.table.setCellWidget(row, 2, bar)
        buttons = QWidget()
        button_layout = QHBoxLayout(buttons)
        button_layout.setContentsMargins(2, 0, 2, 0)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(lambda: self.cancel_requested.emit(job_id))
        reveal = QPushButton("Reveal")
        reveal.setEnabled(False)
        reveal.clicked.connect(lambda: self.reveal(job_id))
        button_layout.addWidget(cancel)
        button_layout.addWidget(reveal)
        self.table.setCellWidget(row, 3, buttons)
        self.empty_label.hide()

    def _cell(self, job_id: str, column: int):
        return self.table.cellWidget(self._rows[job_id], column)

    def _buttons(self, job_id: str) -> list[QPushButton]:
        return self._cell(job_id, 3).findChildren(QPushButton)

    def update_progress(self, job_id: str, done: int, total: int, message: str) -> None:
        if job_id not in self.entries:
            return
        entry = self.entries[job_id]
        entry.state = "running"
        label: QLabel = self._cell(job_id, 1)
        label.setText(f"frame {min(done, total)} of {total}" if total > 0 else "running")
        if message:
            label.setToolTip(message)
        bar: QProgressBar = self._cell(job_id, 2)
        if total > 0:
            bar.setRange(0, total)
            bar.setValue(min(done, total))

    def finish(self, job_id: str, state: str, outcome: RenderResult | str) -> None:
        """Show a job's end: ``outcome`` is the engine's answer when ``state`` is done, else a message."""
        if job_id not in self.entries:
            return
        entry = self.entries[job_id]
        entry.state = state
        bar: QProgressBar = self._cell(job_id, 2)
        if bar.maximum() == 0:
            bar.setRange(0, 1)
        if state == "done":
            entry.outputs = [outcome.output] + ([outcome.sidecar] if outcome.sidecar else [])
            bar.setValue(bar.maximum())
            report = outcome.report
            text = "done"
            if outcome.frames_written is not None:
                text = f"done, {outcome.frames_written} frames"
            if isinstance(report.get("risk_max"), (int, float)):
                entry.message = (
                    f"{outcome.output}\nmodel {report.get('model', '?')}, "
                    f"{report.get('frames_synthesized', '?')} frames generated, "
                    f"max risk {report['risk_max']:.2f}\nreport: {outcome.sidecar}"
                )
        else:
            entry.message = str(outcome)
            text = {"cancelled": "cancelled", "unavailable": "not available", "failed": "failed"}.get(
                state, state
            )
        label: QLabel = self._cell(job_id, 1)
        label.setText(text)
        label.setToolTip(entry.message)
        cancel, reveal = self._buttons(job_id)
        cancel.setEnabled(False)
        reveal.setEnabled(state == "done")

    def reveal(self, job_id: str) -> bool:
        """Open the folder holding the job's output in the system's file browser."""
        entry = self.entries.get(job_id)
        if entry is None or not entry.outputs:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(entry.outputs[0].parent)))
