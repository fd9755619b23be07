"""The viewer: the original and the retimed frame, side by side or as a wipe, with the risk map.

The left (or, in wipe mode, the part left of the wipe line) shows the original clip at the
playhead: the nearest source frame, which is what a plain speed change would repeat. The right
shows the generated in-between frame for the same instant, or the source frame itself when the
playhead sits on a whole source frame.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRect, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from gui import style

SIDE_BY_SIDE = "side"
WIPE = "wipe"
COMPARE_MODES = (SIDE_BY_SIDE, WIPE)


DROP_HERE = "Drop a clip or a timeline here, or use File ▸ Open"


class ViewerWidget(QWidget):
    """Paints the two frames; drag in wipe mode moves the wipe line."""

    wipe_moved = pyqtSignal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(QSize(320, 180))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAutoFillBackground(False)
        self.compare_mode = SIDE_BY_SIDE
        self.wipe_position = 0.5
        self.show_risk = False
        self.original: QImage | None = None
        self.generated: QImage | None = None
        self.risk: QImage | None = None
        self.generated_label = ""
        self.original_label = "ORIGINAL"
        self.placeholder = DROP_HERE
        self.pending = False

    # ------------------------------------------------------------------ content

    def clear(self, placeholder: str | None = None) -> None:
        self.original = self.generated = self.risk = None
        self.generated_label = ""
        if placeholder is not None:
            self.placeholder = placeholder
        self.update()

    def set_original(self, array: np.ndarray, label: str = "ORIGINAL") -> None:
        self.original = style.rgb_image(array)
        self.original_label = label
        self.update()

    def set_generated(self, array: np.ndarray, risk: np.ndarray | None, label: str) -> None:
        self.generated = style.rgb_image(array)
        self.risk = style.risk_image(risk) if risk is not None else None
        self.generated_label = label
        self.pending = False
        self.update()

    def clear_generated(self, label: str) -> None:
        """No generated frame for this instant: show none (an older one would show another)."""
        self.generated = self.risk = None
        self.generated_label = label
        self.pending = False
        self.update()

    def set_pending(self, pending: bool) -> None:
        self.pending = pending
        self.update()

    def set_compare_mode(self, mode: str) -> None:
        if mode not in COMPARE_MODES:
            raise ValueError(f"compare mode {mode!r}; valid: {', '.join(COMPARE_MODES)}")
        self.compare_mode = mode
        self.update()

    def set_show_risk(self, show: bool) -> None:
        self.show_risk = show
        self.update()

    # ------------------------------------------------------------------ painting

    @staticmethod
    def _fit(image_size: QSize, area: QRect) -> QRect:
        if image_size.isEmpty():
            return area
        scaled = image_size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = area.x() + (area.width() - scaled.width()) // 2
        y = area.y() + (area.height() - scaled.height()) // 2
        return QRect(x, y, scaled.width(), scaled.height())

    def _draw_label(self, painter: QPainter, rect: QRect, text: str, colour: QColor) -> None:
        if not text:
            return
        font = QFont(self.font())
        font.setPointSizeF(8.5)
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        box = QRect(rect.x() + 6, rect.y() + 6, metrics.horizontalAdvance(text) + 12, metrics.height() + 6)
        painter.fillRect(box, QColor(0, 0, 0, 170))
        painter.setPen(colour)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _draw_generated(self, painter: QPainter, target: QRect) -> None:
        if self.generated is not None:
            painter.drawImage(target, self.generated)
            if self.show_risk and self.risk is not None:
                painter.drawImage(target, self.risk)
        elif self.original is not None:
            painter.fillRect(target, QColor("#15171a"))
            painter.setPen(style.DIM_TEXT)
            painter.drawText(target, Qt.AlignmentFlag.AlignCenter, "generating…" if self.pending else "")

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(self.rect(), QColor("#101113"))
        if self.original is None:
            painter.setPen(style.DIM_TEXT)
            font = QFont(self.font())
            font.setPointSizeF(11)
            painter.setFont(font)
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder
            )
            painter.end()
            return
        margin = 8
        area = self.rect().adjusted(margin, margin, -margin, -margin)
        if self.compare_mode == SIDE_BY_SIDE:
            half = (area.width() - margin) // 2
            left = self._fit(self.original.size(), QRect(area.x(), area.y(), half, area.height()))
            right = self._fit(
                self.original.size(), QRect(area.x() + half + margin, area.y(), half, area.height())
            )
            painter.drawImage(left, self.original)
            self._draw_generated(painter, right)
            self._draw_label(painter, left, self.original_label, style.TEXT)
            self._draw_label(painter, right, self.generated_label, style.ACCENT)
        else:
            target = self._fit(self.original.size(), area)
            self._draw_generated(painter, target)
            split_x = target.x() + round(self.wipe_position * target.width())
            painter.save()
            painter.setClipRect(QRect(target.x(), target.y(), split_x - target.x(), target.height()))
            painter.drawImage(target, self.original)
            painter.restore()
            painter.setPen(QPen(QColor("#ffffff"), 2))
            painter.drawLine(split_x, target.top(), split_x, target.bottom())
            painter.setBrush(QColor("#ffffff"))
            painter.drawEllipse(QPointF(split_x, target.center().y()), 5.0, 5.0)
            self._draw_label(painter, target, self.original_label, style.TEXT)
            label_rect = QRectF(target).toRect()
            metrics = painter.fontMetrics()
            label_rect.setX(target.right() - metrics.horizontalAdvance(self.generated_label) - 26)
            self._draw_label(painter, label_rect, self.generated_label, style.ACCENT)
        painter.end()

    # ------------------------------------------------------------------ wipe dragging

    def _move_wipe(self, event: QMouseEvent) -> None:
        if self.compare_mode != WIPE or self.original is None:
            return
        target = self._fit(self.original.size(), self.rect().adjusted(8, 8, -8, -8))
        if target.width() <= 0:
            return
        self.wipe_position = min(1.0, max(0.0, (event.position().x() - target.x()) / target.width()))
        self.wipe_moved.emit(self.wipe_position)
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._move_wipe(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._move_wipe(event)
