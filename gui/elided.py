"""A label that shows as much of its text as fits on one line, and never asks for more room."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QFontMetrics, QResizeEvent
from PyQt6.QtWidgets import QLabel, QSizePolicy


def elided_right(text: str, metrics: QFontMetrics, width: int) -> str:
    """``text`` cut at the end with an ellipsis to fit ``width`` pixels."""
    return metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)


class ElidedLabel(QLabel):
    """One line of text elided by ``elide`` to the label's width; the whole text is its tooltip.
    It asks for its whole text's width but takes less (its minimum width is 0), so a long text
    never widens the window."""

    def __init__(
        self,
        text: str = "",
        parent=None,
        *,
        elide: Callable[[str, QFontMetrics, int], str] = elided_right,
    ) -> None:
        super().__init__(parent)
        self._elide_text = elide
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setToolTip(text)
        self.updateGeometry()  # its size hint is the new text's width
        self._elide()

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance(self.full_text) + 4, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self._elide_text(self.full_text, self.fontMetrics(), self.contentsRect().width()))
