"""Keys for the field that has focus: a list (the inspector's Target, Model, Output) or a text field
takes its keys before the window's single-key shortcuts do.

The window's transport keys are window-wide (J K L, Space, arrows, I, O, W, R ...): without this a
focused list could not be changed from the keyboard, since Left/Right/Up/Down and letters would move
the playhead instead. Qt asks the focused widget first (a ``ShortcutOverride`` event); accepting it
for keys the field uses hands the key to the field. Keys with Ctrl or Alt (Ctrl+R, Alt+X) stay the
window's everywhere, and so do all keys on buttons (Space on a focused Queue render button plays,
as it does elsewhere, rather than queuing the render again).
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt
from PyQt6.QtGui import QKeyEvent
from PyQt6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QWidget

FIELD_TYPES = (QComboBox, QLineEdit, QAbstractSpinBox)
FIELD_KEYS = {
    Qt.Key.Key_Up,
    Qt.Key.Key_Down,
    Qt.Key.Key_Left,
    Qt.Key.Key_Right,
    Qt.Key.Key_Home,
    Qt.Key.Key_End,
    Qt.Key.Key_PageUp,
    Qt.Key.Key_PageDown,
    Qt.Key.Key_Space,
}
WINDOW_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier
)


def field_takes(event: QKeyEvent) -> bool:
    """Whether a focused list or text field takes this key rather than the window's shortcut."""
    if event.modifiers() & WINDOW_MODIFIERS:
        return False
    if event.key() in FIELD_KEYS:
        return True
    text = event.text()
    return bool(text) and text.isprintable()


class FieldKeys(QObject):
    """An event filter that hands the keys a field uses to the focused field (see the module doc)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and field_takes(event):
            event.accept()  # the key goes to the field as a key press; no shortcut fires
            return True
        return False


def give_fields_their_keys(root: QWidget) -> FieldKeys:
    """Install ``FieldKeys`` on every list and text field under ``root``; returns the filter."""
    keys = FieldKeys(root)
    for kind in FIELD_TYPES:
        for field in root.findChildren(kind):
            field.installEventFilter(keys)
    return keys
