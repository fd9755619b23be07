"""The timeline strip and the speed-curve plot: the clip's time left to right, aligned.

Both widgets map the current clip's source frames to the same x positions (``TimeAxis``), so a
segment boundary on the strip sits exactly above its step on the curve. Clicking or dragging in
either scrubs; the window snaps the position to the retimed frame grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from gui import style
from gui.results import SpeedAnalysis, SpeedSpan

LEFT_MARGIN = 62
RIGHT_MARGIN = 12


@dataclass(frozen=True)
class TimelineItem:
    """One clip of an opened timeline, as the strip's top row draws it."""

    label: str
    record_start_frames: Fraction
    record_frames: int
    time_scalar: Fraction | None
    speed_class: str = "unknown"
    media_ok: bool = True


class TimeAxis(QWidget):
    """Shared by the strip and the plot: frames of the current clip <-> x pixels; scrubbing."""

    scrubbed = pyqtSignal(object)  # Fraction, source frames

    def __init__(self, parent=None):
        super().__init__(parent)
        self.frame_count = 0
        self.rate = Fraction(30)
        self.playhead_frames = Fraction(0)
        self.in_frame: int | None = None
        self.out_frame: int | None = None
        self.setMouseTracking(False)

    def plot_width(self) -> int:
        return max(1, self.width() - LEFT_MARGIN - RIGHT_MARGIN)

    def x_of(self, frames: Fraction | float) -> float:
        if self.frame_count <= 0:
            return float(LEFT_MARGIN)
        return LEFT_MARGIN + float(frames) / self.frame_count * self.plot_width()

    def frames_at(self, x: float) -> Fraction:
        fraction = (x - LEFT_MARGIN) / self.plot_width()
        fraction = min(1.0, max(0.0, fraction))
        return Fraction(fraction).limit_denominator(10_000) * max(0, self.frame_count - 1)

    def frames_of_seconds(self, seconds: Fraction) -> Fraction:
        return seconds * self.rate

    def set_clip(self, frame_count: int, rate: Fraction) -> None:
        self.frame_count, self.rate = frame_count, Fraction(rate)
        self.playhead_frames = Fraction(0)
        self.in_frame = self.out_frame = None
        self.update()

    def set_playhead(self, frames: Fraction) -> None:
        self.playhead_frames = frames
        self.update()

    def set_marks(self, in_frame: int | None, out_frame: int | None) -> None:
        self.in_frame, self.out_frame = in_frame, out_frame
        self.update()

    def _scrub_row(self, y: float) -> bool:
        return True

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.frame_count > 0 and self._scrub_row(event.position().y()):
            self.scrubbed.emit(self.frames_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton and self.frame_count > 0:
            self.scrubbed.emit(self.frames_at(event.position().x()))

    def _draw_playhead_and_marks(self, painter: QPainter, top: float, bottom: float) -> None:
        if self.frame_count <= 0:
            return
        if self.in_frame is not None or self.out_frame is not None:
            start = self.x_of(self.in_frame or 0)
            end = self.x_of(self.out_frame if self.out_frame is not None else self.frame_count)
            painter.fillRect(QRectF(start, top, end - start, bottom - top), QColor(240, 208, 80, 28))
            painter.setPen(QPen(style.MARK, 1.5))
            for mark in (self.in_frame, self.out_frame):
                if mark is not None:
                    painter.drawLine(QPointF(self.x_of(mark), top), QPointF(self.x_of(mark), bottom))
        x = self.x_of(self.playhead_frames)
        painter.setPen(QPen(style.PLAYHEAD, 1.5))
        painter.drawLine(QPointF(x, top), QPointF(x, bottom))


class TimelineStrip(TimeAxis):
    """A ruler, the opened timeline's clips (coloured by class) and the current clip's segments."""

    item_selected = pyqtSignal(int)

    ROW_TIMELINE = 24
    ROW_CLIP = 22
    RULER = 16

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.items: list[TimelineItem] = []
        self.timeline_frames = 0
        self.selected = -1
        self.segments: list[SpeedSpan] = []
        self.clip_label = ""
        self._update_height()

    def _update_height(self) -> None:
        rows = self.RULER + self.ROW_CLIP + 10 + (self.ROW_TIMELINE + 4 if self.items else 0)
        self.setFixedHeight(rows)

    def sizeHint(self) -> QSize:
        return QSize(640, self.height())

    def set_timeline(self, items: list[TimelineItem], selected: int = -1) -> None:
        self.items = list(items)
        self.timeline_frames = int(max((i.record_start_frames + i.record_frames for i in items), default=0))
        self.selected = selected
        self._update_height()
        self.update()

    def set_item_class(self, index: int, speed_class: str) -> None:
        if 0 <= index < len(self.items):
            item = self.items[index]
            self.items[index] = TimelineItem(
                item.label,
                item.record_start_frames,
                item.record_frames,
                item.time_scalar,
                speed_class,
                item.media_ok,
            )
            self.update()

    def set_segments(self, analysis: SpeedAnalysis | None, label: str = "") -> None:
        self.segments = list(analysis.segments) if analysis else []
        self.clip_label = label
        self.update()

    def _timeline_top(self) -> int:
        return 2

    def _clip_top(self) -> int:
        return (self.ROW_TIMELINE + 6 if self.items else 2) + self.RULER

    def _scrub_row(self, y: float) -> bool:
        if self.items and y < self.ROW_TIMELINE + 4:
            return False
        return True

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.items and event.position().y() < self.ROW_TIMELINE + 4 and self.timeline_frames > 0:
            frames = (event.position().x() - LEFT_MARGIN) / self.plot_width() * self.timeline_frames
            for index, item in enumerate(self.items):
                if item.record_start_frames <= frames < item.record_start_frames + item.record_frames:
                    self.selected = index
                    self.item_selected.emit(index)
                    self.update()
                    return
            return
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), style.PANEL)
        font = QFont(self.font())
        font.setPointSizeF(8)
        painter.setFont(font)
        if self.items:
            self._paint_timeline(painter)
        self._paint_ruler(painter, self._clip_top() - self.RULER)
        self._paint_clip(painter, self._clip_top())
        self._draw_playhead_and_marks(
            painter, self._clip_top() - self.RULER, self._clip_top() + self.ROW_CLIP
        )
        painter.end()

    def _paint_timeline(self, painter: QPainter) -> None:
        top = self._timeline_top()
        painter.setPen(style.DIM_TEXT)
        painter.drawText(
            QRectF(4, top, LEFT_MARGIN - 8, self.ROW_TIMELINE), Qt.AlignmentFlag.AlignVCenter, "TIMELINE"
        )
        if self.timeline_frames <= 0:
            return
        scale = self.plot_width() / self.timeline_frames
        for index, item in enumerate(self.items):
            x = LEFT_MARGIN + float(item.record_start_frames) * scale
            rect = QRectF(x + 1, top, max(2.0, item.record_frames * scale - 2), self.ROW_TIMELINE)
            colour = style.class_colour(item.speed_class)
            painter.fillRect(rect, colour.darker(140) if index != self.selected else colour)
            if not item.media_ok:
                painter.setPen(QPen(style.PLAYHEAD, 1, Qt.PenStyle.DashLine))
                painter.drawRect(rect)
            if index == self.selected:
                painter.setPen(QPen(QColor("#ffffff"), 1.5))
                painter.drawRect(rect.adjusted(0.5, 0.5, -0.5, -0.5))
            speed = "" if item.time_scalar in (None, 1) else f"  {float(item.time_scalar) * 100:.0f}%"
            painter.setPen(QColor("#f4f4f4"))
            painter.drawText(
                rect.adjusted(4, 0, -2, 0), Qt.AlignmentFlag.AlignVCenter, f"{item.label}{speed}"
            )

    def _paint_ruler(self, painter: QPainter, top: int) -> None:
        painter.setPen(style.DIM_TEXT)
        if self.frame_count <= 0:
            return
        seconds_total = self.frame_count / float(self.rate)
        steps = [0.04, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600]
        step_s = next((s for s in steps if self.plot_width() / (seconds_total / s) >= 70), steps[-1])
        count = int(seconds_total / step_s)
        for n in range(count + 1):
            frames = Fraction(n * step_s).limit_denominator(1000) * self.rate
            x = self.x_of(frames)
            painter.drawLine(QPointF(x, top + self.RULER - 5), QPointF(x, top + self.RULER))
            painter.drawText(QPointF(x + 3, top + self.RULER - 4), style.timecode(int(frames), self.rate))

    def _paint_clip(self, painter: QPainter, top: int) -> None:
        painter.setPen(style.DIM_TEXT)
        painter.drawText(
            QRectF(4, top, LEFT_MARGIN - 8, self.ROW_CLIP), Qt.AlignmentFlag.AlignVCenter, "CLIP"
        )
        if self.frame_count <= 0:
            return
        whole = QRectF(LEFT_MARGIN, top, self.plot_width(), self.ROW_CLIP)
        painter.fillRect(whole, style.class_colour("unknown"))
        for span in self.segments:
            start = self.x_of(self.frames_of_seconds(span.start_s))
            end = self.x_of(min(self.frames_of_seconds(span.end_s), Fraction(self.frame_count)))
            rect = QRectF(start, top, max(1.0, end - start), self.ROW_CLIP)
            painter.fillRect(rect, style.class_colour(span.speed_class))
            painter.setPen(QColor("#101010"))
            painter.drawLine(QPointF(start, top), QPointF(start, top + self.ROW_CLIP))
            painter.setPen(QColor("#0b0b0b"))
            text = style.CLASS_TEXT.get(span.speed_class, span.speed_class)
            painter.drawText(rect.adjusted(4, 0, -2, 0), Qt.AlignmentFlag.AlignVCenter, text)
        if not self.segments:
            painter.setPen(QColor("#c8c8c8"))
            painter.drawText(whole.adjusted(6, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, self.clip_label)


class SpeedCurvePlot(TimeAxis):
    """Speed over the clip on a log scale, confidence as a shaded band, segment boundaries dashed."""

    SPEED_TICKS = (Fraction(1, 16), Fraction(1, 8), Fraction(1, 4), Fraction(1, 2), 1, 2, 4, 8)
    LOG2_MIN, LOG2_MAX = -4.3, 3.3

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.analysis: SpeedAnalysis | None = None
        self.target_speed: Fraction | None = None
        self.message = "No clip"

    def sizeHint(self) -> QSize:
        return QSize(640, 150)

    def set_analysis(self, analysis: SpeedAnalysis | None, message: str = "") -> None:
        self.analysis = analysis
        self.message = message
        self.update()

    def set_target_speed(self, speed: Fraction | None) -> None:
        self.target_speed = speed
        self.update()

    def has_curve(self) -> bool:
        return bool(self.analysis and (self.analysis.curve or self.analysis.segments))

    def y_of(self, speed: float) -> float:
        top, bottom = 8.0, self.height() - 14.0
        value = math.log2(max(speed, 1e-6))
        value = min(self.LOG2_MAX, max(self.LOG2_MIN, value))
        return bottom - (value - self.LOG2_MIN) / (self.LOG2_MAX - self.LOG2_MIN) * (bottom - top)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), style.BACKGROUND)
        font = QFont(self.font())
        font.setPointSizeF(8)
        painter.setFont(font)
        self._paint_grid(painter)
        if self.has_curve():
            self._paint_curve(painter)
        else:
            painter.setPen(style.DIM_TEXT)
            area = QRectF(LEFT_MARGIN, 0, self.plot_width(), self.height())
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
        if self.target_speed is not None and self.frame_count > 0:
            y = self.y_of(float(self.target_speed))
            painter.setPen(QPen(style.ACCENT, 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(LEFT_MARGIN, y), QPointF(LEFT_MARGIN + self.plot_width(), y))
            painter.drawText(
                QPointF(LEFT_MARGIN + self.plot_width() - 90, y - 3),
                f"target {style.speed_text(self.target_speed).split(' ')[0]}",
            )
        self._draw_playhead_and_marks(painter, 4, self.height() - 12)
        painter.end()

    def _paint_grid(self, painter: QPainter) -> None:
        for tick in self.SPEED_TICKS:
            y = self.y_of(float(tick))
            painter.setPen(QPen(style.GRID if tick != 1 else QColor("#5a606b"), 1))
            painter.drawLine(QPointF(LEFT_MARGIN, y), QPointF(LEFT_MARGIN + self.plot_width(), y))
            painter.setPen(style.DIM_TEXT)
            label = "1x" if tick == 1 else (f"{int(1 / tick)}x slow" if tick < 1 else f"{int(tick)}x fast")
            painter.drawText(
                QRectF(2, y - 8, LEFT_MARGIN - 8, 16),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )

    def _paint_curve(self, painter: QPainter) -> None:
        analysis = self.analysis
        bottom = self.height() - 12
        for span in analysis.segments:
            start = self.x_of(self.frames_of_seconds(span.start_s))
            end = self.x_of(self.frames_of_seconds(span.end_s))
            painter.fillRect(QRectF(start, bottom, end - start, 6), style.class_colour(span.speed_class))
            if span.start_s > 0:
                painter.setPen(QPen(QColor("#c0c4cc"), 1, Qt.PenStyle.DashLine))
                painter.drawLine(QPointF(start, 4), QPointF(start, bottom))
        spans = analysis.curve or analysis.segments
        path = QPainterPath()
        started = False
        for span in spans:
            if span.speed is None:
                started = False
                continue
            start = self.x_of(self.frames_of_seconds(span.start_s))
            end = self.x_of(self.frames_of_seconds(span.end_s))
            spread = 2.0 ** (2.0 * (1.0 - span.confidence))
            low, high = self.y_of(float(span.speed) * spread), self.y_of(float(span.speed) / spread)
            shade = QColor(style.ACCENT)
            shade.setAlpha(int(30 + 60 * span.confidence))
            painter.fillRect(QRectF(start, low, max(1.0, end - start), high - low), shade)
            y = self.y_of(float(span.speed))
            if not started:
                path.moveTo(start, y)
                started = True
            else:
                path.lineTo(start, y)
            path.lineTo(end, y)
        painter.setPen(QPen(QColor("#e8f1ff"), 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
