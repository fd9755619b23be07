"""What the app remembers between sessions, in ``places().config_dir / gui.ini`` (QSettings, INI).

Values are checked on the way in; a value out of range falls back to the default (logged at
WARNING), so a hand-edited file can never stop the app from starting.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings

from engine.places import places

log = logging.getLogger(__name__)

SETTINGS_FILE = "gui.ini"
MAX_RECENT = 10
DEFAULT_BACKEND = "flow"
DEFAULT_SPEED = Fraction(1, 4)
SPEED_CHOICES = (
    Fraction(1, 2),
    Fraction(1, 4),
    Fraction(1, 5),
    Fraction(1, 8),
    Fraction(1, 10),
    Fraction(1, 16),
)


def choose_backend(saved: str, served: list[str]) -> str:
    """The model to use: the saved one when the engine serves it, else ``DEFAULT_BACKEND`` (or,
    when the engine lacks that too, its first model), logged at WARNING as any fallback is."""
    if saved in served or not served:
        return saved
    fallback = DEFAULT_BACKEND if DEFAULT_BACKEND in served else served[0]
    log.warning(
        "settings: model %r is not one this engine serves (%s); using %s",
        saved,
        ", ".join(served),
        fallback,
    )
    return fallback


def settings_path() -> Path:
    return places().config_dir / SETTINGS_FILE


class AppSettings:
    """Typed access to the app's settings file."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else settings_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._store = QSettings(str(self.path), QSettings.Format.IniFormat)

    def sync(self) -> None:
        self._store.sync()

    @property
    def last_folder(self) -> Path | None:
        value = self._store.value("files/last_folder", "", str)
        return Path(value) if value and Path(value).is_dir() else None

    @last_folder.setter
    def last_folder(self, folder: Path) -> None:
        self._store.setValue("files/last_folder", str(folder))

    @property
    def recent_files(self) -> list[Path]:
        value = self._store.value("files/recent", [], list) or []
        if isinstance(value, str):
            value = [value]
        return [Path(item) for item in value if item][:MAX_RECENT]

    def add_recent(self, path: Path) -> None:
        path = Path(path).resolve()
        recent = [p for p in self.recent_files if p != path]
        self._store.setValue("files/recent", [str(p) for p in [path, *recent][:MAX_RECENT]])
        self.last_folder = path.parent

    @property
    def render_folder(self) -> Path | None:
        value = self._store.value("render/folder", "", str)
        return Path(value) if value else None

    @render_folder.setter
    def render_folder(self, folder: Path) -> None:
        self._store.setValue("render/folder", str(folder))

    @property
    def backend(self) -> str:
        return self._store.value("retime/backend", DEFAULT_BACKEND, str) or DEFAULT_BACKEND

    @backend.setter
    def backend(self, name: str) -> None:
        self._store.setValue("retime/backend", name)

    @property
    def target_speed(self) -> Fraction:
        text = self._store.value("retime/speed", str(DEFAULT_SPEED), str)
        try:
            speed = Fraction(text)
        except (ValueError, ZeroDivisionError):
            speed = Fraction(0)
        if not 0 < speed <= 1:
            log.warning("settings: retime speed %r is not in (0, 1]; using %s", text, DEFAULT_SPEED)
            return DEFAULT_SPEED
        return speed

    @target_speed.setter
    def target_speed(self, speed: Fraction) -> None:
        self._store.setValue("retime/speed", str(speed))

    @property
    def compare_mode(self) -> str:
        value = self._store.value("view/compare", "side", str)
        return value if value in ("side", "wipe") else "side"

    @compare_mode.setter
    def compare_mode(self, mode: str) -> None:
        self._store.setValue("view/compare", mode)

    @property
    def show_risk(self) -> bool:
        return self._store.value("view/risk", False, bool)

    @show_risk.setter
    def show_risk(self, show: bool) -> None:
        self._store.setValue("view/risk", bool(show))

    def layout(self, name: str) -> QByteArray | None:
        value = self._store.value(f"layout/{name}")
        return value if isinstance(value, QByteArray) else None

    def set_layout(self, name: str, state: QByteArray) -> None:
        self._store.setValue(f"layout/{name}", state)
