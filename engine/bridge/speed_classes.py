"""The detector's five speed classes: how editors read them, and the marker colour of each."""

from __future__ import annotations

CLASS_COLORS = {
    "realtime": "Blue",
    "slowmo": "Green",
    "synthetic_slowmo": "Red",
    "sped_up": "Yellow",
    "still": "Cream",
}
CLASS_NAMES = {
    "realtime": "Real time",
    "slowmo": "Slow motion",
    "synthetic_slowmo": "Fake slow motion",
    "sped_up": "Sped up",
    "still": "Still (cannot tell)",
}
