"""The render queue: one row per retime job, with its state and progress, cancel and "reveal output"."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from PyQt6.QtCore import QPoint, Qt, QUrl, pyqtSignal
from PyQt6.QtGui import QDesktopServices, QFontMetrics
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from engine.interp.checks import runs_text
from gui.elided import ElidedLabel
from gui.results import RenderOrder, RenderResult
from gui.style import frames_text

COLUMNS = ("Output", "State", "")
OUTPUT_COLUMN, STATE_COLUMN, ACTIONS_COLUMN = range(len(COLUMNS))
STATE_WIDTH = 96  # "✓ 1200 frames", "1200 of 1200", "not available" in the default font
ACTION_BUTTON_WIDTH = 28
FINISHED = {"done", "failed", "cancelled", "unavailable"}
FINISHED_TEXT = {"cancelled": "cancelled", "unavailable": "not available", "failed": "failed"}
RETRYABLE = {"failed", "cancelled"}
CHECK_KEYS = {1: "C", -1: "Shift+C"}  # next / previous frame to check (the window's Playback menu)
WAITING_TEXT = "waiting for engine"
WAITING_TIP = (
    "Waiting for the engine: this render starts as soon as an engine runs (Engine ▸ Start engine starts one)."
)
STOPPED_TEXT = "engine stopped"
STOPPED_TIP = "The engine stopped while rendering; Retry renders it again."


@dataclass
class QueueEntry:
    job_id: str
    order: RenderOrder
    state: str = "queued"
    message: str = ""
    outputs: list[Path] = field(default_factory=list)
    started: bool = False  # the engine reported progress: it was rendering
    frames_to_check: list[int] = field(default_factory=list)
    """The output frames its report lists to look at (counted from In, as the render numbers them)."""


def elided_output_name(name: str, metrics: QFontMetrics, width: int) -> str:
    """``name`` in ``width`` pixels: the stem shortened first, so that the parts that tell two
    renders apart (``.f10-40.25pct.flow-2.mp4``) stay whole; elided in the middle when even
    those do not fit."""
    if metrics.horizontalAdvance(name) <= width:
        return name
    stem, dot, parts = name.partition(".")
    for kept in range(len(stem) - 1, 0, -1):
        candidate = f"{stem[:kept]}…{dot}{parts}"
        if metrics.horizontalAdvance(candidate) <= width:
            return candidate
    return metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, width)


class OutputNameLabel(ElidedLabel):
    """An output's file name on one line, as much of it as fits (``elided_output_name``); it never
    asks the table for more room."""

    def __init__(self, name: str, parent=None):
        super().__init__(name, parent, elide=elided_output_name)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)


def _state_bar() -> QProgressBar:
    bar = QProgressBar()
    bar.setRange(0, 1)
    bar.setValue(0)
    bar.setTextVisible(True)
    bar.setFormat("queued")
    bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return bar


def _action_button(icon: QStyle.StandardPixmap, tooltip: str, parent: QWidget) -> QPushButton:
    button = QPushButton(parent.style().standardIcon(icon), "")
    button.setToolTip(tooltip)
    button.setFixedWidth(ACTION_BUTTON_WIDTH)
    button.setFlat(True)
    return button


class RenderQueue(QWidget):
    """Rows of render jobs; the window feeds it the engine link's job signals.

    Each row fits the side panel at any window size: the output name (elided in the middle), the
    state with its progress ("queued", "waiting for engine", "12 of 40", "✓ 12 frames" when done,
    "failed", "engine stopped"; the tooltip has the details) and two icon buttons, Cancel (Retry
    once it failed or was cancelled) and Reveal; no horizontal scrolling. The row's context menu
    has Retry, Cancel and Reveal output.
    """

    cancel_requested = pyqtSignal(str)
    retry_requested = pyqtSignal(str)
    check_frame_requested = pyqtSignal(str, int)  # job id, +1 next / -1 previous frame to check

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(24)
        header.setSectionResizeMode(OUTPUT_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(STATE_COLUMN, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(ACTIONS_COLUMN, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(STATE_COLUMN, STATE_WIDTH)
        self.table.setColumnWidth(ACTIONS_COLUMN, 2 * ACTION_BUTTON_WIDTH + 6)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.empty_label = QLabel(
            "No renders yet. Set In and Out (I, O), pick a target speed or draw a ramp, then Queue render."
        )
        self.empty_label.setWordWrap(True)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table)
        self.entries: dict[str, QueueEntry] = {}
        self._rows: dict[str, int] = {}
        self._row_buttons: dict[str, tuple[QPushButton, QPushButton, QPushButton]] = {}

    def add(self, job_id: str, order: RenderOrder) -> None:
        entry = QueueEntry(job_id, order)
        self.entries[job_id] = entry
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._rows[job_id] = row
        self.table.setCellWidget(row, OUTPUT_COLUMN, OutputNameLabel(order.output.name))
        self._show_order(job_id)
        self.table.setCellWidget(row, STATE_COLUMN, _state_bar())
        buttons = QWidget()
        button_layout = QHBoxLayout(buttons)
        button_layout.setContentsMargins(2, 0, 2, 0)
        button_layout.setSpacing(2)
        cancel = _action_button(QStyle.StandardPixmap.SP_DialogCancelButton, "Cancel this render", buttons)
        cancel.clicked.connect(lambda: self.cancel_requested.emit(job_id))
        # Retry takes Cancel's place once the render failed or was cancelled
        retry = _action_button(QStyle.StandardPixmap.SP_BrowserReload, "Retry: render it again", buttons)
        retry.clicked.connect(lambda: self.retry_requested.emit(job_id))
        retry.hide()
        reveal = _action_button(
            QStyle.StandardPixmap.SP_DirOpenIcon, "Reveal the output in the file browser", buttons
        )
        reveal.setEnabled(False)
        reveal.clicked.connect(lambda: self.reveal(job_id))
        button_layout.addWidget(cancel)
        button_layout.addWidget(retry)
        button_layout.addWidget(reveal)
        self._row_buttons[job_id] = (cancel, retry, reveal)
        self.table.setCellWidget(row, ACTIONS_COLUMN, buttons)
        self.empty_label.hide()

    def _show_order(self, job_id: str) -> None:
        order = self.entries[job_id].order
        name = self._cell(job_id, OUTPUT_COLUMN)
        name.set_full_text(order.output.name)
        name.setToolTip(
            f"{order.output.name}\nin {order.output.parent}\nfrom {order.source}\n"
            f"source frames {order.in_frame} to {order.out_frame - 1}, "
            f"{order.describe_speed()}, model {order.backend}"
            + (f", codec {order.codec}" if order.codec else "")
        )

    def set_output(self, job_id: str, output: Path) -> None:
        """Render row ``job_id`` to ``output`` instead (its name was taken when the engine got it)."""
        entry = self.entries.get(job_id)
        if entry is None:
            return
        entry.order = replace(entry.order, output=Path(output))
        self._show_order(job_id)

    def _cell(self, job_id: str, column: int):
        return self.table.cellWidget(self._rows[job_id], column)

    def state_bar(self, job_id: str) -> QProgressBar:
        """The row's state: its progress, with the state as text ("12 of 40", "✓ 12 frames")."""
        return self._cell(job_id, STATE_COLUMN)

    def state_text(self, job_id: str) -> str:
        return self.state_bar(job_id).text()

    def _buttons(self, job_id: str) -> tuple[QPushButton, QPushButton]:
        """The row's Cancel and Reveal buttons."""
        cancel, _, reveal = self._row_buttons[job_id]
        return cancel, reveal

    def retry_button(self, job_id: str) -> QPushButton:
        return self._row_buttons[job_id][1]

    def can_retry(self, job_id: str) -> bool:
        entry = self.entries.get(job_id)
        return entry is not None and entry.state in RETRYABLE

    def _show_retry(self, job_id: str, shown: bool) -> None:
        cancel, retry, _ = self._row_buttons[job_id]
        cancel.setVisible(not shown)
        retry.setVisible(shown)

    def set_waiting(self, job_id: str) -> None:
        """The render waits for an engine (none runs, or the one that had it stopped before it
        began); it is sent when one runs."""
        if job_id not in self.entries:
            return
        entry = self.entries[job_id]
        entry.state, entry.message, entry.started = "waiting", WAITING_TIP, False
        bar = self.state_bar(job_id)
        bar.setRange(0, 1)
        bar.setValue(0)
        bar.setFormat(WAITING_TEXT)
        bar.setToolTip(WAITING_TIP)
        self._show_retry(job_id, False)
        cancel, _, reveal = self._row_buttons[job_id]
        cancel.setEnabled(True)
        reveal.setEnabled(False)

    def set_queued(self, job_id: str) -> None:
        """The render was sent to the engine (again): it waits there for its turn."""
        if job_id not in self.entries:
            return
        entry = self.entries[job_id]
        entry.state, entry.message, entry.started = "queued", "", False
        bar = self.state_bar(job_id)
        bar.setRange(0, 1)
        bar.setValue(0)
        bar.setFormat("queued")
        bar.setToolTip("queued in the engine")
        self._show_retry(job_id, False)
        cancel, _, reveal = self._row_buttons[job_id]
        cancel.setEnabled(True)
        reveal.setEnabled(False)

    def _context_menu(self, point: QPoint) -> None:
        row = self.table.rowAt(point.y())
        job_id = next((job for job, index in self._rows.items() if index == row), None)
        if job_id is None:
            return
        self.context_menu(job_id).exec(self.table.viewport().mapToGlobal(point))

    def context_menu(self, job_id: str) -> QMenu:
        """The row's menu: Retry (a failed or cancelled render), Cancel, Reveal output, and for a
        finished render whose report lists frames to check, Next / Previous frame to check (the
        playhead goes to it)."""
        entry = self.entries[job_id]
        menu = QMenu(self)
        retry = menu.addAction("Retry", lambda: self.retry_requested.emit(job_id))
        retry.setEnabled(self.can_retry(job_id))
        cancel = menu.addAction("Cancel", lambda: self.cancel_requested.emit(job_id))
        cancel.setEnabled(entry.state not in FINISHED)
        reveal = menu.addAction("Reveal output", lambda: self.reveal(job_id))
        reveal.setEnabled(bool(entry.outputs))
        menu.addSeparator()
        for text, direction in (("Next frame to check", 1), ("Previous frame to check", -1)):
            action = menu.addAction(text, lambda d=direction: self.check_frame_requested.emit(job_id, d))
            action.setShortcut(CHECK_KEYS[direction])  # shown; the window's Playback menu has the keys
            action.setEnabled(bool(entry.frames_to_check))
        return menu

    def selected_job(self) -> str | None:
        """The job of the row selected in the table, or None."""
        row = self.table.currentRow()
        return next((job for job, index in self._rows.items() if index == row), None)

    def update_progress(self, job_id: str, done: int, total: int, message: str) -> None:
        if job_id not in self.entries:
            return
        entry = self.entries[job_id]
        if entry.state in FINISHED:
            return
        entry.state, entry.started = "running", True
        bar = self.state_bar(job_id)
        if total > 0:
            bar.setRange(0, total)
            bar.setValue(min(done, total))
            bar.setFormat(f"{min(done, total)} of {total}")
        else:
            bar.setRange(0, 1)
            bar.setFormat("running")
        progress = f"frame {min(done, total)} of {total}" if total > 0 else "running"
        bar.setToolTip(f"{progress}\n{message}" if message else progress)

    def finish(self, job_id: str, state: str, outcome: RenderResult | str, *, stopped: bool = False) -> None:
        """Show a job's end: ``outcome`` is the engine's answer when ``state`` is done, else a
        message; ``stopped``: it failed because the engine stopped while rendering it."""
        if job_id not in self.entries:
            return
        entry = self.entries[job_id]
        entry.state = state
        bar = self.state_bar(job_id)
        if state == "done":
            entry.outputs = [outcome.output] + ([outcome.sidecar] if outcome.sidecar else [])
            bar.setValue(bar.maximum())
            report = outcome.report
            text = "✓ done"
            if outcome.frames_written is not None:
                text = f"✓ {frames_text(outcome.frames_written)}"
            runs = _check_runs(report)
            entry.frames_to_check = [frame for first, last in runs for frame in range(first, last + 1)]
            if isinstance(report.get("risk_max"), (int, float)):
                synthesized = report.get("frames_synthesized")
                generated = frames_text(synthesized) if isinstance(synthesized, int) else "? frames"
                entry.message = (
                    f"{outcome.output}\nmodel {report.get('model', '?')}, "
                    f"{generated} generated, "
                    f"max risk {report['risk_max']:.2f}{_to_check(report)}\nreport: {outcome.sidecar}"
                )
            if runs:
                entry.message += (
                    f"\nframes to check: {runs_text(runs)} (retimed frames, counted from In; "
                    f"{CHECK_KEYS[1]} / {CHECK_KEYS[-1]} or this row's menu go to them)"
                )
        elif stopped:
            entry.message = STOPPED_TIP
            text = STOPPED_TEXT
        else:
            entry.message = str(outcome)
            text = FINISHED_TEXT.get(state, state)
        bar.setFormat(text)
        if stopped:
            bar.setToolTip(entry.message)
        else:
            bar.setToolTip(f"{state}: {entry.message}" if entry.message not in ("", state) else state)
        cancel, _, reveal = self._row_buttons[job_id]
        cancel.setEnabled(False)
        reveal.setEnabled(state == "done")
        self._show_retry(job_id, state in RETRYABLE)

    def reveal(self, job_id: str) -> bool:
        """Open the folder holding the job's output in the system's file browser."""
        entry = self.entries.get(job_id)
        if entry is None or not entry.outputs:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(entry.outputs[0].parent)))


def _check_runs(report: dict) -> list[list[int]]:
    """The report's frames to check as runs ``[[first, last], ...]`` (none when it lists none)."""
    runs = report.get("frames_to_check")
    if not isinstance(runs, list):
        return []
    return [
        [int(run[0]), int(run[1])]
        for run in runs
        if isinstance(run, (list, tuple)) and len(run) == 2 and all(isinstance(n, int) for n in run)
    ]


def _to_check(report: dict) -> str:
    """``, 3 frames to check`` when the report lists made frames to look at (see the sidecar)."""
    count = report.get("frames_to_check")
    if isinstance(count, list):  # a full report: runs of frames
        count = sum(last - first + 1 for first, last in count)
    if not isinstance(count, int) or count <= 0:
        return ""
    return f", {frames_text(count)} to check"
