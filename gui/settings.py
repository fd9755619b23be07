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
# An EDL does not say its frame rate: the app asks, offering these (23.976 is 24000/1001 exactly).
EDL_RATES = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(48),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)
DEFAULT_EDL_RATE = Fraction(24)  # what `chronoscope render` reads an EDL at without --rate
# An image sequence has no frame rate either: the app asks, offering the same rates.
SEQUENCE_RATES = EDL_RATES
DEFAULT_SEQUENCE_RATE = Fraction(24)
# Output codecs offered for renders (``engine.media.writer.CODECS`` by name) and their suffix.
CODEC_SUFFIXES = {"prores": ".mov", "h264": ".mp4", "h265": ".mp4", "ffv1": ".mkv"}
CODEC_LABELS = {
    "prores": "ProRes 422 HQ (.mov, 10-bit)",
    "h264": "H.264 (.mp4)",
    "h265": "H.265 (.mp4)",
    "ffv1": "FFV1 lossless (.mkv)",
}
# Settings a command-line option may set for one run only (never written to the file).
RUN_ONLY = ("target_speed", "backend", "compare_mode", "show_risk")


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
    """Typed access to the app's settings file.

    ``for_this_run`` holds values given on the command line: they are read back in this session
    and never written; a later choice of the user's (a setter) replaces them and is saved.
    """

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else settings_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._store = QSettings(str(self.path), QSettings.Format.IniFormat)
        self._run_only: dict[str, object] = {}

    def sync(self) -> None:
        self._store.sync()

    def for_this_run(self, name: str, value) -> None:
        """Use ``value`` for setting ``name`` (one of ``RUN_ONLY``) in this session without saving it."""
        if name not in RUN_ONLY:
            raise ValueError(f"setting {name!r} cannot be set for one run; these can: {', '.join(RUN_ONLY)}")
        self._run_only[name] = value

    def _saved(self, name: str) -> None:
        self._run_only.pop(name, None)

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
    def render_folder(self, folder: Path | None) -> None:
        """The folder renders go to; None: the default one (``gui.output_names.default_output_folder``)."""
        if folder is None:
            self._store.remove("render/folder")
        else:
            self._store.setValue("render/folder", str(folder))

    @property
    def backend(self) -> str:
        if "backend" in self._run_only:
            return str(self._run_only["backend"])
        return self._store.value("retime/backend", DEFAULT_BACKEND, str) or DEFAULT_BACKEND

    @backend.setter
    def backend(self, name: str) -> None:
        self._saved("backend")
        self._store.setValue("retime/backend", name)

    @property
    def target_speed(self) -> Fraction:
        if "target_speed" in self._run_only:
            return Fraction(self._run_only["target_speed"])
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
        self._saved("target_speed")
        self._store.setValue("retime/speed", str(speed))

    @property
    def compare_mode(self) -> str:
        if "compare_mode" in self._run_only:
            return str(self._run_only["compare_mode"])
        value = self._store.value("view/compare", "side", str)
        if value not in ("side", "wipe"):
            log.warning("settings: compare mode %r is not one of side, wipe; using side", value)
            return "side"
        return value

    @compare_mode.setter
    def compare_mode(self, mode: str) -> None:
        self._saved("compare_mode")
        self._store.setValue("view/compare", mode)

    @property
    def show_risk(self) -> bool:
        if "show_risk" in self._run_only:
            return bool(self._run_only["show_risk"])
        value = self._store.value("view/risk", False)
        text = str(value).strip().lower()
        if isinstance(value, bool) or text in ("true", "false", "1", "0"):
            return value if isinstance(value, bool) else text in ("true", "1")
        log.warning("settings: risk overlay %r is not true or false; using false", value)
        return False

    @show_risk.setter
    def show_risk(self, show: bool) -> None:
        self._saved("show_risk")
        self._store.setValue("view/risk", bool(show))

    @property
    def edl_rate(self) -> Fraction:
        """The frame rate last chosen for an EDL (``EDL_RATES``); 24 until one is."""
        return self._offered_rate("timeline/edl_rate", EDL_RATES, DEFAULT_EDL_RATE, "EDL rate")

    @edl_rate.setter
    def edl_rate(self, rate: Fraction) -> None:
        self._store.setValue("timeline/edl_rate", str(Fraction(rate)))

    @property
    def sequence_rate(self) -> Fraction:
        """The frame rate last chosen for an image sequence (``SEQUENCE_RATES``); 24 until one is."""
        return self._offered_rate(
            "media/sequence_rate", SEQUENCE_RATES, DEFAULT_SEQUENCE_RATE, "sequence rate"
        )

    @sequence_rate.setter
    def sequence_rate(self, rate: Fraction) -> None:
        self._store.setValue("media/sequence_rate", str(Fraction(rate)))

    def _offered_rate(
        self, key: str, offered: tuple[Fraction, ...], default: Fraction, what: str
    ) -> Fraction:
        """The rate stored under ``key`` when it is one of ``offered``, else ``default`` (WARNING)."""
        text = self._store.value(key, str(default), str)
        try:
            rate = Fraction(text)
        except (ValueError, ZeroDivisionError):
            rate = None
        if rate not in offered:
            log.warning("settings: %s %r is not one of %s; using %s", what, text,
                        ", ".join(str(r) for r in offered), default)
            return default
        return rate

    @property
    def codec(self) -> str | None:
        """The output codec last chosen for renders (``CODEC_SUFFIXES``); None: follow the source."""
        value = self._store.value("render/codec", "", str)
        if value and value not in CODEC_SUFFIXES:
            log.warning(
                "settings: render codec %r is not one of %s; following the source",
                value,
                ", ".join(CODEC_SUFFIXES),
            )
            return None
        return value or None

    @codec.setter
    def codec(self, name: str | None) -> None:
        self._store.setValue("render/codec", name or "")

    def layout(self, name: str) -> QByteArray | None:
        value = self._store.value(f"layout/{name}")
        return value if isinstance(value, QByteArray) else None

    def set_layout(self, name: str, state: QByteArray) -> None:
        self._store.setValue(f"layout/{name}", state)
