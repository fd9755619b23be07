"""The preview app's questions: at what rate an EDL or an image sequence is read (neither says),
and whether to close while renders wait for an engine. ``MainWindow`` asks through replaceable
providers, which tests answer without a modal dialog."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QVBoxLayout,
)

from engine.media.sequence import ImageSequence
from gui import style
from gui.sequences import OPEN_ONE_FRAME
from gui.settings import DEFAULT_SEQUENCE_RATE, EDL_RATES, SEQUENCE_RATES


def rate_combo(rates: Sequence[Fraction], default: Fraction, fallback: Fraction) -> QComboBox:
    """A box of ``rates`` (as an editor writes them), ``default`` chosen, else ``fallback``."""
    combo = QComboBox()
    for rate in rates:
        combo.addItem(style.rate_text(rate), rate)
    index = style.combo_index(combo, Fraction(default))
    combo.setCurrentIndex(index if index >= 0 else list(rates).index(fallback))
    return combo


class EdlRateDialog(QDialog):
    """Asks the frame rate of an EDL (EDLs do not say it): one of ``EDL_RATES``."""

    def __init__(self, path: Path, default: Fraction, parent=None):
        super().__init__(parent)
        self.setWindowTitle("EDL frame rate")
        layout = QVBoxLayout(self)
        question = QLabel(
            f"{path.name} is an EDL, which does not say its frame rate. "
            "At what rate was it exported? Timecodes and speeds (M2) are read at this rate."
        )
        question.setWordWrap(True)
        layout.addWidget(question)
        form = QFormLayout()
        self.rate_combo = rate_combo(EDL_RATES, default, Fraction(24))
        form.addRow("Frame rate", self.rate_combo)
        layout.addLayout(form)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def rate(self) -> Fraction:
        return self.rate_combo.currentData()


def ask_edl_rate(parent, path: Path, default: Fraction) -> Fraction | None:
    """The rate the user picks for the EDL at ``path`` in a small dialog; None when cancelled."""
    dialog = EdlRateDialog(path, default, parent)
    return dialog.rate() if dialog.exec() == QDialog.DialogCode.Accepted.value else None


def _frames_text(sequence: ImageSequence) -> str:
    """``frames 1001–1048, 48 in all``; with holes ``..., 47 there: 1020 missing``."""
    span = f"frames {sequence.first}–{sequence.final}"
    missing = sequence.missing()
    if not missing:
        return f"{span}, {sequence.count} in all"
    names = ", ".join(str(n) for n in missing[:4])
    names += f" and {len(missing) - 4} more" if len(missing) > 4 else ""
    return f"{span}, {sequence.span_frames - len(missing)} there: {names} missing"


class SequenceRateDialog(QDialog):
    """Asks whether an image that is one frame of a numbered sequence opens as the sequence (a
    clip of its frames, at the rate picked: one of ``SEQUENCE_RATES``) or alone, as a still."""

    def __init__(self, path: Path, sequence: ImageSequence, default: Fraction, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Image sequence")
        self.setMinimumWidth(440)
        self.open_one_frame = False
        layout = QVBoxLayout(self)
        question = QLabel(
            f"{path.name} is one frame of the image sequence {sequence.display_name} "
            f"({_frames_text(sequence)}). Open the sequence "
            "as a clip? An image sequence does not say its frame rate: pick the rate it plays at."
        )
        question.setWordWrap(True)
        layout.addWidget(question)
        form = QFormLayout()
        self.rate_combo = rate_combo(SEQUENCE_RATES, default, DEFAULT_SEQUENCE_RATE)
        form.addRow("Frame rate", self.rate_combo)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.sequence_button = buttons.addButton("Open sequence", QDialogButtonBox.ButtonRole.AcceptRole)
        self.one_frame_button = buttons.addButton("Only this image", QDialogButtonBox.ButtonRole.ActionRole)
        self.sequence_button.setDefault(True)
        self.one_frame_button.clicked.connect(self._one_frame)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _one_frame(self) -> None:
        self.open_one_frame = True
        self.accept()

    def answer(self) -> Fraction | str:
        """The rate picked, or ``OPEN_ONE_FRAME``."""
        return OPEN_ONE_FRAME if self.open_one_frame else self.rate_combo.currentData()


def ask_sequence_rate(
    parent, path: Path, sequence: ImageSequence, default: Fraction
) -> Fraction | str | None:
    """Open the image ``path`` as its sequence (the rate picked), alone (``OPEN_ONE_FRAME``), or
    not at all (None: cancelled)."""
    dialog = SequenceRateDialog(path, sequence, default, parent)
    return dialog.answer() if dialog.exec() == QDialog.DialogCode.Accepted.value else None


def ask_close_with_waiting(parent, count: int) -> bool:
    """Whether to close although ``count`` renders wait for an engine: only this window holds
    them (no engine has them yet), so closing loses them. Keeping the window open is the default."""
    renders = "1 render is" if count == 1 else f"{count} renders are"
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Renders waiting for an engine")
    box.setText(f"{renders} waiting for an engine and will be lost if the app closes.")
    box.setInformativeText(
        "No engine has them yet: start one (Engine ▸ Start engine) and they are sent to it, and "
        "then the engine finishes them even after the app closes."
    )
    close = box.addButton("Close and lose them", QMessageBox.ButtonRole.DestructiveRole)
    keep = box.addButton("Keep the app open", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.exec()
    return box.clickedButton() is close
