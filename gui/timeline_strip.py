"""The timeline strip and the speed-curve plot: the clip's time left to right, aligned.

Both widgets map the current clip's source frames to the same x positions (``TimeAxis``), so a
segment boundary on the strip sits exactly above its step on the curve. Clicking or dragging in
either scrubs; the window snaps the position to the retimed frame grid.

The plot also carries the speed ramp (``gui.ramp``): an orange line on its own axis at the right
(100 % at the top down to 6.25 %), over the same time axis as the detected curve. In ramp mode a
click adds a keyframe, a drag moves one, a right-click deletes one, and the plot stops scrubbing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QFontMetricsF, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from gui import style
from gui.ramp import MAX_RAMP_SPEED, MIN_RAMP_SPEED, NICE_SPEEDS, DrawnRamp, RampGrid, percent_text
from gui.results import SpeedAnalysis, SpeedSpan
from gui.timecode import SourceClock

LEFT_MARGIN = 62
RIGHT_MARGIN = 48
RAMP_COLOUR_NAME = "#ff9d3c"
HANDLE_RADIUS = 5.0
HIT_DISTANCE = 9.0
SNAP_PIXELS = 5.0
RULER_SECOND_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
RULER_LABEL_GAP = 16.0  # pixels between one ruler label's end and the next tick
RULER_LABEL_OFFSET = 3.0


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
        self.clock = SourceClock.of(self.rate)
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

    def set_clip(self, frame_count: int, rate: Fraction, clock: SourceClock | None = None) -> None:
        """A clip of ``frame_count`` frames at ``rate``; ``clock`` labels the ruler (default:
        counted from 0)."""
        self.frame_count, self.rate = frame_count, Fraction(rate)
        self.clock = clock or SourceClock.of(self.rate)
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
        self.rate_note = ""
        self._update_height()

    def _update_height(self) -> None:
        rows = self.RULER + self.ROW_CLIP + 10 + (self.ROW_TIMELINE + 4 if self.items else 0)
        self.setFixedHeight(rows)

    def sizeHint(self) -> QSize:
        return QSize(640, self.height())

    def set_timeline(self, items: list[TimelineItem], selected: int = -1, rate_note: str = "") -> None:
        """The timeline's clips; ``rate_note`` says the rate it was read at (an EDL's: the chosen one)."""
        self.items = list(items)
        self.rate_note = rate_note
        self.setToolTip(f"Timeline · {rate_note}" if rate_note else "")
        self.timeline_frames = int(max((i.record_start_frames + i.record_frames for i in items), default=0))
        self.selected = selected
        self._update_height()
        self.update()

    def set_selected(self, index: int) -> None:
        """Outline the timeline clip ``index`` (-1: none) as the one shown."""
        self.selected = index
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
                    self.item_selected.emit(index)  # the window selects it once its media is shown
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
        rate = self.rate_note.replace("EDL read at ", "").replace(" fps", "")
        painter.drawText(
            QRectF(4, top, LEFT_MARGIN - 8, self.ROW_TIMELINE),
            Qt.AlignmentFlag.AlignVCenter,
            f"TIMELINE\n{rate} fps" if rate else "TIMELINE",
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

    def ruler_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(8)
        return font

    def ruler_step_frames(self, label_width: float) -> int:
        """Frames between ruler ticks: the smallest step that leaves room for a label. Steps are
        whole parts of a second (a divisor of the timecode's frames per second) or whole seconds,
        counted as timecode counts them (30 frames a second at 29.97), so labels read ``:00``."""
        timecode_fps = max(1, round(self.rate))
        parts_of_second = [step for step in range(1, timecode_fps) if timecode_fps % step == 0]
        steps = parts_of_second + [timecode_fps * seconds for seconds in RULER_SECOND_STEPS]
        pixels_per_frame = self.plot_width() / max(1, self.frame_count)
        room = label_width + RULER_LABEL_GAP
        return next((step for step in steps if step * pixels_per_frame >= room), steps[-1])

    def ruler_ticks(self) -> list[tuple[int, float, str]]:
        """``(frame, x, label)`` for each ruler tick, labelled with the clip's source timecode
        (``clock``) and placed where that timecode is round; the label is "" where it would be cut
        by the widget's right edge."""
        if self.frame_count <= 0:
            return []
        metrics = QFontMetricsF(self.ruler_font())
        label_width = metrics.horizontalAdvance(self.clock.frame_text(self.frame_count))
        step = self.ruler_step_frames(label_width)
        first = -self.clock.timecode_number(0) % step
        ticks = []
        for frame in range(first, self.frame_count + 1, step):
            x = self.x_of(frame)
            label = self.clock.frame_text(frame)
            fits = x + RULER_LABEL_OFFSET + metrics.horizontalAdvance(label) <= self.width()
            ticks.append((frame, x, label if fits else ""))
        return ticks

    def _paint_ruler(self, painter: QPainter, top: int) -> None:
        painter.setPen(style.DIM_TEXT)
        painter.setFont(self.ruler_font())
        for _frame, x, label in self.ruler_ticks():
            painter.drawLine(QPointF(x, top + self.RULER - 5), QPointF(x, top + self.RULER))
            if label:
                painter.drawText(QPointF(x + RULER_LABEL_OFFSET, top + self.RULER - 4), label)

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
    """Speed over the clip on a log scale, confidence as a shaded band, segment boundaries dashed;
    the speed ramp (when drawn) on its own axis at the right, editable in ramp mode."""

    SPEED_TICKS = (Fraction(1, 16), Fraction(1, 8), Fraction(1, 4), Fraction(1, 2), 1, 2, 4, 8)
    LOG2_MIN, LOG2_MAX = -4.3, 3.3
    RAMP_TICKS = (Fraction(1), Fraction(1, 2), Fraction(1, 4), Fraction(1, 8), Fraction(1, 16))
    RAMP_LOG2_MIN, RAMP_LOG2_MAX = math.log2(MIN_RAMP_SPEED) - 0.25, math.log2(MAX_RAMP_SPEED) + 0.25

    ramp_edited = pyqtSignal()  # the keyframes changed (added, moved or deleted)
    ramp_selection_changed = pyqtSignal(object)  # index of the selected keyframe, or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.analysis: SpeedAnalysis | None = None
        self.target_speed: Fraction | None = None
        self.message = "No clip"
        self.ramp: DrawnRamp | None = None
        self.ramp_origin = 0
        self.ramp_mode = False
        self.selected_key: int | None = None
        self._dragging: int | None = None

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

    def _plot_top_bottom(self) -> tuple[float, float]:
        return 8.0, self.height() - 14.0

    def y_of(self, speed: float) -> float:
        top, bottom = self._plot_top_bottom()
        value = math.log2(max(speed, 1e-6))
        value = min(self.LOG2_MAX, max(self.LOG2_MIN, value))
        return bottom - (value - self.LOG2_MIN) / (self.LOG2_MAX - self.LOG2_MIN) * (bottom - top)

    # ------------------------------------------------------------------ the ramp

    def set_ramp(self, ramp: DrawnRamp | None, origin_frames: int) -> None:
        """Show (and in ramp mode, edit) ``ramp``: the window's own object, which the plot changes
        in place and then emits ``ramp_edited``. ``origin_frames``: where the render starts."""
        if ramp is not self.ramp:
            self._select(None)
            self._dragging = None
        self.ramp, self.ramp_origin = ramp, origin_frames
        if self.selected_key is not None and (ramp is None or self.selected_key >= len(ramp)):
            self._select(None)
        self.update()

    def set_ramp_mode(self, on: bool) -> None:
        self.ramp_mode = on
        self._dragging = None
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.update()

    def ramp_y_of(self, speed: float) -> float:
        """The y of a ramp speed on the ramp's own (right-hand) log axis."""
        top, bottom = self._plot_top_bottom()
        value = min(self.RAMP_LOG2_MAX, max(self.RAMP_LOG2_MIN, math.log2(max(speed, 1e-6))))
        share = (value - self.RAMP_LOG2_MIN) / (self.RAMP_LOG2_MAX - self.RAMP_LOG2_MIN)
        return bottom - share * (bottom - top)

    def ramp_speed_at(self, y: float) -> Fraction:
        """The ramp speed a pointer at ``y`` means: a nice speed (1/2, 1/4, ...) when within a few
        pixels of it, else whole percent (half percent below 10 %), inside 1/16 to 1."""
        for nice in NICE_SPEEDS:
            if abs(self.ramp_y_of(float(nice)) - y) <= SNAP_PIXELS:
                return nice
        top, bottom = self._plot_top_bottom()
        share = (bottom - y) / max(1.0, bottom - top)
        value = self.RAMP_LOG2_MIN + share * (self.RAMP_LOG2_MAX - self.RAMP_LOG2_MIN)
        speed = 2.0**value
        steps = 200 if speed < 0.1 else 100
        quantised = Fraction(round(speed * steps), steps)
        return min(MAX_RAMP_SPEED, max(MIN_RAMP_SPEED, quantised))

    def ramp_handle_points(self) -> list[QPointF]:
        """Where each keyframe's handle is drawn (the same order as the ramp's anchors)."""
        if not self.ramp:
            return []
        return [
            QPointF(self.x_of(h.source_frames), self.ramp_y_of(float(h.speed)))
            for h in self.ramp.handles(self.ramp_origin)
        ]

    def handle_at(self, point: QPointF) -> int | None:
        best, best_distance = None, HIT_DISTANCE
        for index, handle in enumerate(self.ramp_handle_points()):
            distance = math.hypot(handle.x() - point.x(), handle.y() - point.y())
            if distance <= best_distance:
                best, best_distance = index, distance
        return best

    def _select(self, index: int | None) -> None:
        if index != self.selected_key:
            self.selected_key = index
            self.ramp_selection_changed.emit(index)
        self.update()

    def delete_selected_key(self) -> bool:
        """Delete the selected keyframe (the Delete key); returns whether one was deleted."""
        if self.ramp is None or self.selected_key is None or self.selected_key >= len(self.ramp):
            return False
        self.ramp.remove(self.selected_key)
        self._select(None)
        self.ramp_edited.emit()
        return True

    def _pointer_frames(self, x: float) -> Fraction:
        return Fraction(round(self.frames_at(x)))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if not self.ramp_mode:
            super().mousePressEvent(event)
            return
        if self.ramp is None or self.frame_count <= 0:
            return
        point = event.position()
        hit = self.handle_at(point)
        if event.button() == Qt.MouseButton.RightButton:
            if hit is not None:
                self.ramp.remove(hit)
                self._select(None)
                self.ramp_edited.emit()
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        added = hit is None
        if added:
            hit = self.ramp.add(self._pointer_frames(point.x()), self.ramp_speed_at(point.y()))
        self._dragging = hit
        self._select(hit)
        if added:
            self.ramp_edited.emit()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if not self.ramp_mode:
            super().mouseMoveEvent(event)
            return
        if self._dragging is None or self.ramp is None or not event.buttons() & Qt.MouseButton.LeftButton:
            return
        point = event.position()
        self.ramp.move(self._dragging, self._pointer_frames(point.x()), self.ramp_speed_at(point.y()))
        self.ramp_edited.emit()
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._dragging = None
        super().mouseReleaseEvent(event)

    # ------------------------------------------------------------------ painting

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), style.BACKGROUND)
        font = QFont(self.font())
        font.setPointSizeF(8)
        painter.setFont(font)
        ramp_shown = bool(self.ramp) and self.frame_count > 0
        self._paint_grid(painter, dim=ramp_shown or self.ramp_mode)
        if self.ramp_mode or ramp_shown:
            self._paint_ramp_axis(painter)
        if self.has_curve():
            painter.setOpacity(0.45 if self.ramp_mode else 1.0)
            self._paint_curve(painter)
            painter.setOpacity(1.0)
        message = ""
        if not self.has_curve() and not ramp_shown:
            message = self.message
            if self.ramp_mode and self.frame_count > 0:
                message = "Click to add speed keyframes; drag to move; right-click or Delete to remove"
        if ramp_shown:
            self._paint_ramp(painter)
        elif self.target_speed is not None and self.frame_count > 0:
            y = self.y_of(float(self.target_speed))
            painter.setPen(QPen(style.ACCENT, 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(LEFT_MARGIN, y), QPointF(LEFT_MARGIN + self.plot_width(), y))
            painter.drawText(
                QPointF(LEFT_MARGIN + self.plot_width() - 90, y - 3),
                f"target {style.speed_text(self.target_speed).split(' ')[0]}",
            )
        if message:
            self._paint_message(painter, message)
        self._draw_playhead_and_marks(painter, 4, self.height() - 12)
        painter.end()

    def _paint_message(self, painter: QPainter, text: str) -> None:
        """``text`` in the middle of the plot on a panel of its own, so that grid lines and the
        target's label never run through it."""
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        area = QRectF(LEFT_MARGIN + 12, 4, max(1.0, self.plot_width() - 24), max(1.0, self.height() - 8))
        bounds = painter.boundingRect(area, flags, text).adjusted(-8, -3, 8, 3).intersected(area)
        painter.setPen(QPen(style.GRID, 1))
        painter.setBrush(style.BACKGROUND)
        painter.drawRoundedRect(bounds, 3, 3)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(style.DIM_TEXT)
        painter.drawText(bounds, flags, text)

    def _paint_ramp_axis(self, painter: QPainter) -> None:
        colour = QColor(RAMP_COLOUR_NAME)
        right = LEFT_MARGIN + self.plot_width()
        guide = QColor(colour)
        guide.setAlpha(60 if self.ramp_mode else 0)
        for tick in self.RAMP_TICKS:
            y = self.ramp_y_of(float(tick))
            if self.ramp_mode:
                painter.setPen(QPen(guide, 1, Qt.PenStyle.DotLine))
                painter.drawLine(QPointF(LEFT_MARGIN, y), QPointF(right, y))
            painter.setPen(QPen(colour, 1))
            painter.drawLine(QPointF(right, y), QPointF(right + 4, y))
            painter.drawText(
                QRectF(right + 6, y - 8, RIGHT_MARGIN - 7, 16),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                percent_text(tick),
            )

    def _paint_ramp(self, painter: QPainter) -> None:
        ramp = self.ramp.speed_ramp(self.ramp_origin)
        grid = RampGrid(ramp, self.ramp_origin)
        colour = QColor(RAMP_COLOUR_NAME)
        last = max(0, self.frame_count - 1)
        points = [
            QPointF(self.x_of(frames), self.ramp_y_of(speed))
            for frames, speed in grid.curve_points(0.0, float(last), int(self.plot_width()))
            if 0 <= frames <= last
        ]
        start = self.x_of(self.in_frame or 0)
        end = self.x_of(self.out_frame if self.out_frame is not None else self.frame_count)
        outside = QColor(colour)
        outside.setAlpha(90)
        for pen_colour, clip in ((outside, None), (colour, (start, end))):
            painter.save()
            if clip is not None:
                painter.setClipRect(QRectF(clip[0], 0, clip[1] - clip[0], self.height()))
            path = QPainterPath()
            for index, point in enumerate(points):
                if index == 0:
                    path.moveTo(point)
                else:
                    path.lineTo(point)
            painter.setPen(QPen(pen_colour, 2.0 if clip is not None else 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            painter.restore()
        top, _ = self._plot_top_bottom()
        for index, (point, handle) in enumerate(
            zip(self.ramp_handle_points(), self.ramp.handles(self.ramp_origin), strict=True)
        ):
            selected = index == self.selected_key
            painter.setPen(QPen(QColor("#ffffff") if selected else QColor("#1b1d21"), 1.5))
            painter.setBrush(QColor("#ffffff") if selected else colour)
            radius = HANDLE_RADIUS + (1.5 if selected else 0.0)
            diamond = QPainterPath()
            diamond.moveTo(point.x(), point.y() - radius)
            diamond.lineTo(point.x() + radius, point.y())
            diamond.lineTo(point.x(), point.y() + radius)
            diamond.lineTo(point.x() - radius, point.y())
            diamond.closeSubpath()
            painter.drawPath(diamond)
            text = percent_text(handle.speed)
            label_y = point.y() - radius - 4 if point.y() - radius - 14 > top else point.y() + radius + 12
            painter.setPen(QColor("#ffffff") if selected else colour)
            painter.drawText(QPointF(point.x() + 6, label_y), text)
        painter.setBrush(Qt.BrushStyle.NoBrush)

    def _paint_grid(self, painter: QPainter, *, dim: bool = False) -> None:
        """The detected curve's speed axis; ``dim`` when the ramp's own axis is shown too."""
        for tick in self.SPEED_TICKS:
            y = self.y_of(float(tick))
            painter.setPen(QPen(style.GRID if tick != 1 else QColor("#5a606b"), 1))
            painter.drawLine(QPointF(LEFT_MARGIN, y), QPointF(LEFT_MARGIN + self.plot_width(), y))
            painter.setPen(style.DIM_TEXT.darker(130) if dim else style.DIM_TEXT)
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
