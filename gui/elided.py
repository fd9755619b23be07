"""A label that shows as much of its text as fits on one line, and never asks for more room; a
status bar whose messages end in an ellipsis rather than run under its permanent widgets."""

from __future__ import annotations

import time
from collections.abc import Callable

from PyQt6.QtCore import QSize, Qt
from PyQt6.QtGui import QFontMetrics, QResizeEvent
from PyQt6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget


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


class ElidingStatusBar(QStatusBar):
    """A status bar whose messages are cut with an ellipsis where they would run into its permanent
    widgets (the engine's state at the right); the whole message is its tooltip, and
    ``full_message`` gives it back."""

    PERMANENT_SPACING = 8  # between permanent widgets, and before the first of them

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._full = ""
        self._until_ns: int | None = None  # when a message with a timeout goes
        self._permanent: list[QWidget] = []
        self.messageChanged.connect(self._message_changed)

    def addPermanentWidget(self, widget: QWidget, stretch: int = 0) -> None:
        self._permanent.append(widget)
        super().addPermanentWidget(widget, stretch)

    def showMessage(self, text: str, timeout: int = 0) -> None:
        self._full = text
        self._until_ns = time.monotonic_ns() + timeout * 1_000_000 if timeout > 0 else None
        self.setToolTip(text)
        super().showMessage(self._elided(text), timeout)

    def full_message(self) -> str:
        """The message shown, whole (as given), or "" when none is."""
        return self._full if self.currentMessage() else ""

    def message_room(self) -> int:
        """Pixels a message may take: the bar less its permanent widgets and the size grip."""
        shown = [widget for widget in self._permanent if not widget.isHidden()]
        taken = sum(widget.sizeHint().width() + self.PERMANENT_SPACING for widget in shown)
        grip = 16 if self.isSizeGripEnabled() else 0
        return max(0, self.width() - taken - grip - 2 * self.PERMANENT_SPACING)

    def _elided(self, text: str) -> str:
        return self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, self.message_room())

    def _message_changed(self, text: str) -> None:
        if not text:  # timed out or cleared
            self._full = ""
            self.setToolTip("")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._full and self.currentMessage():  # the same message, cut for the new width
            left_ms = 0
            if self._until_ns is not None:
                left_ms = max(1, (self._until_ns - time.monotonic_ns()) // 1_000_000)
            full = self._full
            super().showMessage(self._elided(full), left_ms)
            self._full = full
