"""The inspector: what the clip is, what the engine found, and the retime settings."""

from __future__ import annotations

from fractions import Fraction

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.media.sequence import IMAGE_SUFFIXES
from gui import style
from gui.frames import ClipInfo
from gui.ramp import percent_text
from gui.results import CLASS_LABELS, SpeedAnalysis
from gui.settings import CODEC_LABELS, SPEED_CHOICES
from gui.timecode import SourceClock

EVIDENCE_LINES = 6  # shown in full; the rest are counted, and all are in the tooltip


def speed_choice_text(speed: Fraction) -> str:
    """A target speed as the Target list shows it: ``25%  (4x slower)``, ``33.33%  (3x slower)``."""
    if speed == 1:
        return "100%  (real time)"
    return f"{percent_text(speed)}  ({float(1 / speed):.3g}x slower)"


def _value_label() -> QLabel:
    label = QLabel("—")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


class Inspector(QWidget):
    """Clip facts, the speed analysis, the retime choice and the preview figures."""

    target_speed_changed = pyqtSignal(object)  # Fraction
    backend_changed = pyqtSignal(str)
    codec_changed = pyqtSignal(object)  # a CODEC_LABELS name, or None: like the source
    render_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumWidth(260)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        clip_box = QGroupBox("Clip")
        clip_form = QFormLayout(clip_box)
        self.file_label, self.format_label, self.length_label = _value_label(), _value_label(), _value_label()
        self.timeline_label = _value_label()
        clip_form.addRow("Timeline", self.timeline_label)
        clip_form.labelForField(self.timeline_label).hide()
        self.timeline_label.hide()
        clip_form.addRow("File", self.file_label)
        clip_form.addRow("Format", self.format_label)
        clip_form.addRow("Length", self.length_label)
        self.timecode_label = _value_label()
        clip_form.addRow("Timecode", self.timecode_label)
        layout.addWidget(clip_box)

        speed_box = QGroupBox("Speed analysis")
        speed_form = QFormLayout(speed_box)
        self.class_label = _value_label()
        self.speed_label, self.capture_label = _value_label(), _value_label()
        self.confidence_label, self.model_label = _value_label(), _value_label()
        self.evidence_label = _value_label()
        self.evidence_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.analysis_status = _value_label()
        speed_form.addRow("Class", self.class_label)
        speed_form.addRow("Speed", self.speed_label)
        speed_form.addRow("Capture", self.capture_label)
        speed_form.addRow("Confidence", self.confidence_label)
        speed_form.addRow("Model", self.model_label)
        speed_form.addRow("Evidence", self.evidence_label)
        speed_form.addRow(self.analysis_status)
        layout.addWidget(speed_box)

        retime_box = QGroupBox("Retime")
        retime_form = QFormLayout(retime_box)
        self.speed_combo = QComboBox()
        for speed in SPEED_CHOICES:
            self.speed_combo.addItem(speed_choice_text(speed), speed)
        self.speed_combo.currentIndexChanged.connect(
            lambda _: self.target_speed_changed.emit(self.speed_combo.currentData())
        )
        self.backend_combo = QComboBox()
        self.backend_combo.currentTextChanged.connect(self._backend_picked)
        self.codec_combo = QComboBox()
        self.codec_combo.addItem("Like the source", None)
        for name, label in CODEC_LABELS.items():
            self.codec_combo.addItem(label, name)
        self.codec_combo.setToolTip("The render's codec and file type; Like the source follows each clip")
        self.codec_combo.currentIndexChanged.connect(
            lambda _: self.codec_changed.emit(self.codec_combo.currentData())
        )
        self.preview_label = _value_label()
        self.risk_label = _value_label()
        self.risk_label.setToolTip(
            "The generated frame's risk: the share of its picture the model could not vouch for, and "
            "local: its worst subject-sized patch. 'check this frame' when the local risk reaches the "
            "level measured for the model (the render's report lists such frames)"
        )
        self.range_label = _value_label()
        self.render_button = QPushButton("Queue render")
        self.render_button.clicked.connect(self.render_requested)
        self.ramp_label = _value_label()
        retime_form.addRow("Target", self.speed_combo)
        retime_form.addRow("Ramp", self.ramp_label)
        retime_form.addRow("Model", self.backend_combo)
        retime_form.addRow("Preview", self.preview_label)
        retime_form.addRow("Risk", self.risk_label)
        retime_form.addRow("In / Out", self.range_label)
        retime_form.addRow("Output", self.codec_combo)
        # render_button is not in the form: its owner keeps it in view (the window puts it under
        # the inspector's scroll area, so it never scrolls out of sight)
        layout.addWidget(retime_box)
        layout.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

    def _backend_picked(self, name: str) -> None:
        if name:
            self.backend_changed.emit(name)

    # ------------------------------------------------------------------ content

    def set_clip(self, info: ClipInfo | None) -> None:
        if info is None:
            for label in (self.file_label, self.format_label, self.length_label, self.timecode_label):
                label.setText("—")
            return
        self.file_label.setText(info.display_name or info.path.name)
        self.file_label.setToolTip(str(info.path))
        if info.frame_count < 2 and info.path.suffix.lower() in IMAGE_SUFFIXES:
            # an image has no rate of its own (the reader's 25 fps is made up)
            self.format_label.setText(f"{info.width}×{info.height} · still image")
            self.length_label.setText("1 frame")
            return
        rate = style.rate_text(info.rate)
        if info.is_vfr:  # shown on the constant grid retime renders it on (gui.frames)
            rate += " · variable, read by its timestamps"
        self.format_label.setText(f"{info.width}×{info.height} · {rate}")
        self.length_label.setText(
            f"{style.frames_text(info.frame_count)} · {style.timecode(info.frame_count, info.rate)}"
        )

    def set_timecode(self, clock: SourceClock | None, in_timeline: bool = False) -> None:
        """Which clock the transport, the ruler and In/Out show (``gui.timecode``): the clip's
        source timecode; for a clip of a timeline, still its media's (not the timeline's record
        timecode), which is what matching it against the camera files and the EDL's source
        columns needs."""
        if clock is None:
            self.timecode_label.setText("—")
            self.timecode_label.setToolTip("")
            return
        if clock.start_timecode is not None:
            text = f"source, from {clock.start_timecode}"
        else:
            text = "from 0 (the file has no start timecode)"
        if clock.drop_frame:
            text += " · drop frame"
        if in_timeline:
            text += " · the media's, not the timeline's record timecode"
        self.timecode_label.setText(text)
        note = " (a timeline clip: its media's source timecode, as the EDL's source columns)"
        self.timecode_label.setToolTip(
            f"The transport, the ruler and In/Out show {clock.describe()}{note if in_timeline else ''}"
        )

    def set_timeline(self, text: str | None) -> None:
        """The opened timeline: its name, clips and the frame rate it was read at (None: no timeline)."""
        form = self.timeline_label.parentWidget().layout()
        self.timeline_label.setText(text or "—")
        self.timeline_label.setVisible(bool(text))
        form.labelForField(self.timeline_label).setVisible(bool(text))

    def set_analysis(self, analysis: SpeedAnalysis | None, status: str = "") -> None:
        if analysis is None:
            for label in (
                self.class_label,
                self.speed_label,
                self.capture_label,
                self.confidence_label,
                self.model_label,
                self.evidence_label,
            ):
                label.setText("—")
            self.evidence_label.setToolTip("")
            self.class_label.setStyleSheet("")
        else:
            colour = style.class_colour(analysis.speed_class)
            self.class_label.setText(CLASS_LABELS.get(analysis.speed_class, analysis.speed_class))
            self.class_label.setStyleSheet(
                f"background: {colour.name()}; color: #111; padding: 2px 6px; "
                "border-radius: 3px; font-weight: bold;"
            )
            self.speed_label.setText(style.speed_text(analysis.speed))
            self.capture_label.setText(
                "—" if analysis.capture_fps is None else style.rate_text(analysis.capture_fps)
            )
            self.confidence_label.setText(f"{analysis.confidence:.0%}")
            self.model_label.setText(analysis.model or "—")
            shown, rest = analysis.evidence[:EVIDENCE_LINES], analysis.evidence[EVIDENCE_LINES:]
            lines = [f"• {line}" for line in shown]
            if rest:
                lines.append(f"… {len(rest)} more (hover to read them)")
            self.evidence_label.setText("\n".join(lines) or "—")
            self.evidence_label.setToolTip("\n".join(f"• {line}" for line in analysis.evidence))
        self.analysis_status.setText(status)
        self.analysis_status.setVisible(bool(status))

    def set_backends(self, names: list[str], preferred: str) -> None:
        self.backend_combo.blockSignals(True)
        self.backend_combo.clear()
        self.backend_combo.addItems(names)
        if preferred in names:
            self.backend_combo.setCurrentText(preferred)
        self.backend_combo.blockSignals(False)
        if self.backend_combo.currentText():
            self.backend_changed.emit(self.backend_combo.currentText())

    def set_target_speed(self, speed: Fraction) -> None:
        index = style.combo_index(self.speed_combo, speed)
        if index < 0:
            self.speed_combo.addItem(speed_choice_text(speed), speed)
            index = self.speed_combo.count() - 1
        self.speed_combo.setCurrentIndex(index)

    def show_target_speed(self, speed: Fraction) -> None:
        """Show ``speed`` as the target without reporting it as the user's choice."""
        self.speed_combo.blockSignals(True)
        try:
            self.set_target_speed(speed)
        finally:
            self.speed_combo.blockSignals(False)

    def show_codec(self, chosen: str | None, source_default: str | None) -> None:
        """Show the output codec: ``chosen`` (None: like the source, whose codec is then named)."""
        self.codec_combo.blockSignals(True)
        try:
            like = (
                "Like the source"
                if source_default is None
                else (f"Like the source: {CODEC_LABELS.get(source_default, source_default)}")
            )
            self.codec_combo.setItemText(0, like)
            index = self.codec_combo.findData(chosen) if chosen is not None else 0
            self.codec_combo.setCurrentIndex(max(0, index))
        finally:
            self.codec_combo.blockSignals(False)

    def set_ramp_summary(self, summary: str | None) -> None:
        """Show the drawn ramp (it replaces the constant target), or how to draw one."""
        self.speed_combo.setEnabled(summary is None)
        self.speed_combo.setToolTip(
            "" if summary is None else "A speed ramp is drawn: it replaces the target (Clear ramp to return)"
        )
        self.ramp_label.setText(summary or "none · Shift+R draws one on the speed curve")
        self.ramp_label.setStyleSheet("color: #ff9d3c;" if summary else "color: #8b9099;")

    def target_speed(self) -> Fraction:
        return self.speed_combo.currentData()

    def backend(self) -> str:
        return self.backend_combo.currentText()
