"""Colours, the dark palette, timecode text and image conversion shared by the widgets."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from PyQt6.QtGui import QColor, QImage, QPalette
from PyQt6.QtWidgets import QApplication

CLASS_COLOURS = {
    "realtime": QColor("#4f8fd8"),
    "slowmo": QColor("#3fb27f"),
    "synthetic_slowmo": QColor("#e3a33b"),
    "sped_up": QColor("#d9574f"),
    "still": QColor("#8c8c8c"),
    "unknown": QColor("#4a4d55"),
}
BACKGROUND = QColor("#1b1d21")
PANEL = QColor("#24272d")
GRID = QColor("#3a3e46")
TEXT = QColor("#d6d8dc")
DIM_TEXT = QColor("#8b9099")
PLAYHEAD = QColor("#ff4f4f")
MARK = QColor("#f0d050")
ACCENT = QColor("#5fa8ff")
# The message bar: background and text per level, readable on the dark theme (contrast above 7:1)
MESSAGE_COLOURS = {
    "error": (QColor("#7a2626"), QColor("#fbeaea")),
    "warning": (QColor("#5c460e"), QColor("#fff6e0")),
    "info": (QColor("#33373f"), QColor("#e6e8ec")),
}


def combo_index(combo, value) -> int:
    """The index of the item of ``combo`` whose data equals ``value`` (``findData`` cannot compare
    Python objects such as ``Fraction``), or -1."""
    return next((i for i in range(combo.count()) if combo.itemData(i) == value), -1)


def message_colours(level: str) -> tuple[QColor, QColor]:
    """Background and text colour of a message of ``level`` (error, warning, info)."""
    return MESSAGE_COLOURS.get(level, MESSAGE_COLOURS["info"])


def class_colour(speed_class: str) -> QColor:
    return CLASS_COLOURS.get(speed_class, CLASS_COLOURS["unknown"])


def apply_dark_palette(app: QApplication) -> None:
    """A dark Fusion look, as editing tools have."""
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: PANEL,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BACKGROUND,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: QColor("#2e3138"),
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: QColor("#0b0c0e"),
        QPalette.ColorRole.PlaceholderText: DIM_TEXT,
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, DIM_TEXT)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, DIM_TEXT)
    app.setPalette(palette)


def timecode(frames: Fraction | int, rate: Fraction) -> str:
    """``HH:MM:SS:FF`` for a source position (whole frames; a sub-frame part as ``+1/4``).

    Non-integer rates count frames at the rounded rate (non-drop-frame), as editors show them.
    """
    frames = Fraction(frames)
    whole = int(frames)
    fps = max(1, round(rate))
    hours, rest = divmod(whole, fps * 3600)
    minutes, rest = divmod(rest, fps * 60)
    seconds, frame = divmod(rest, fps)
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frame:02d}"
    phase = frames - whole
    return f"{text}+{phase.numerator}/{phase.denominator}" if phase else text


def frames_text(count: int) -> str:
    """``1 frame``, ``12 frames``."""
    return f"{count} frame" if count == 1 else f"{count} frames"


def number_text(value: float) -> str:
    """A measured number as an editor reads it: up to three decimals from 1 up, so frame rates
    keep their NTSC digits (``29.97``, ``23.976``, ``59.94``, ``240``); three significant digits
    below 1 (``0.0557``)."""
    if abs(value) >= 1:
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def rate_text(rate: Fraction | float) -> str:
    """A frame rate: ``29.97 fps``, ``23.976 fps``, ``30 fps``."""
    return f"{number_text(float(rate))} fps"


def rgb_image(array: np.ndarray) -> QImage:
    """A QImage holding its own copy of an (h, w, 3) uint8 RGB (or uint16, scaled) array."""
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    array = np.ascontiguousarray(array[..., :3])
    height, width, _ = array.shape
    return QImage(array.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def risk_image(risk: np.ndarray) -> QImage:
    """The risk map as red with opacity rising with risk (0: clear, 1: strong)."""
    level = np.clip(np.nan_to_num(risk.astype(np.float32)), 0.0, 1.0)
    height, width = level.shape[:2]
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = (60 * (1.0 - level)).astype(np.uint8)
    rgba[..., 3] = (level * 210).astype(np.uint8)
    return QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()


READABLE_TERMS = 64  # 1/8, 2/5, 5/4, 1/32 read as fractions; 43/699 (a measured speed) does not


def speed_text(speed: Fraction | None) -> str:
    """``1/8 (8x slow)``, ``1 (real time)``, ``4 (4x fast)``; a measured speed whose exact fraction
    says nothing to an editor (``43/699``) is shown as a decimal, ``0.06152 (16.3x slow)``."""
    if speed is None:
        return "—"
    if speed == 1:
        return "1 (real time)"
    if speed < 1:
        factor = 1 / speed
        amount = f"{float(factor):.3g}x slow"
    else:
        amount = f"{float(speed):.3g}x fast"
    if speed.denominator == 1:
        return f"{speed} ({amount})"
    if speed.denominator <= READABLE_TERMS and speed.numerator <= READABLE_TERMS:
        return f"{speed.numerator}/{speed.denominator} ({amount})"
    return f"{float(speed):.4g} ({amount})"


CLASS_TEXT = {
    "realtime": "real time",
    "slowmo": "slow motion",
    "synthetic_slowmo": "fake slow-mo",
    "sped_up": "sped up",
    "still": "still",
    "unknown": "",
}
