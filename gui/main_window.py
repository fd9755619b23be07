"""The main window: viewer, transport, timeline strip, speed curve, inspector and render queue.

Time in the window is the current clip's source time in frames, kept exact (``Fraction``). The
playhead moves on the retimed clip's frame grid: with a target speed of 1/4, one step is a
quarter of a source frame, so three of every four positions are generated frames. With a speed
ramp drawn on the curve (``gui.ramp``) the grid follows the ramp instead: output frame n, counted
from the In mark, shows the source position the engine's ramp gives it, and that is the position
the preview asks for and the ramp the render sends.
"""

from __future__ import annotations

import json
import logging
import re
from fractions import Fraction
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PyQt6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.errors import ChronoscopeError, TimelineError, UnsupportedOptionError
from engine.fsutil import write_text_atomic
from engine.retime.ramp import load_ramp, parse_ramp
from gui import style
from gui.dialogs import ask_close_with_waiting, ask_edl_rate, ask_sequence_rate
from gui.elided import ElidedLabel, ElidingStatusBar
from gui.engine_link import (
    INTERRUPTED,
    OUTPUT_TAKEN,
    WAITING,
    EngineLink,
    EngineState,
    PreviewFrame,
    PreviewRequest,
    new_job_id,
)
from gui.field_keys import give_fields_their_keys
from gui.frames import FrameSource, open_frame_source
from gui.inspector import Inspector
from gui.output_names import (
    OutputNaming,
    codec_for_source,
    codec_suffix,
    default_output_folder,
    output_folder_problem,
    output_taken,
    range_part,
    speed_part,
)
from gui.ramp import MIN_RAMP_SPEED, ConstantGrid, DrawnRamp, RampGrid, percent_text
from gui.render_queue import CHECK_KEYS, RenderQueue
from gui.results import RenderOrder, SpeedAnalysis
from gui.sequences import OPEN_ONE_FRAME, is_pattern, output_stem, sequence_around, sequence_media
from gui.settings import (
    AppSettings,
    choose_backend,
)
from gui.timecode import SourceClock
from gui.timeline_strip import SpeedCurvePlot, TimelineItem, TimelineStrip
from gui.viewer import DROP_HERE, SIDE_BY_SIDE, WIPE, ViewerWidget

log = logging.getLogger(__name__)

TIMELINE_SUFFIXES = {".otio", ".otioz", ".otiod", ".edl", ".xml", ".fcpxml"}
MEDIA_FILTER = (
    "Clips, image sequences and timelines (*.mp4 *.mov *.mkv *.avi *.mpg *.mxf *.m4v *.webm "
    "*.dpx *.exr *.tif *.tiff *.png *.jpg *.jpeg *.otio *.otioz *.edl *.xml *.fcpxml);;"
    "Image sequence frames (*.dpx *.exr *.tif *.tiff *.png *.jpg *.jpeg);;All files (*)"
)
RAMP_FILTER = "Speed ramps (*.json);;All files (*)"
MAX_SHUTTLE = 8
STILL_IMAGE_TEXT = (
    "A still image (one frame): the speed is measured from motion, so there is none to analyse."
)
REFINE_AFTER_MS = 250
RENDER_TIP = "Queue a render of In to Out at the target speed or along the ramp (Ctrl+R)"
STILL_RENDER_TEXT = (
    "A still image has one frame: there is nothing to make between frames, so nothing to render."
)
REANALYSE_AFTER_MS = 3000  # after an engine stop, longer than the two missed pings that tell it
ANALYSING_TEXT = "Analysing speed…"
WAITING_TEXT = "Waiting for the engine to analyse the speed…"
INTERRUPTED_TEXT = "The engine stopped during the speed analysis; it runs again when the engine is back."
MAX_OUTPUT_RENAMES = 5  # names found taken in a row before a render is given up as failed


# What a message in the bar is about; a message goes when its subject does (another clip opened,
# the engine back, a later preview or render that worked).
ENGINE, OPENING, CLIP, PREVIEW, RAMP, RENDER = "engine", "opening", "clip", "preview", "ramp", "render"
ZERO_WIDTH_SPACE = "\u200b"
BREAK_AFTER = "/\\_-.,;:"
LONGEST_UNBROKEN = 24


def _breakable_word(word: str) -> str:
    pieces, run = [], 0
    for character in word:
        pieces.append(character)
        run += 1
        if character in BREAK_AFTER or run >= LONGEST_UNBROKEN:
            pieces.append(ZERO_WIDTH_SPACE)
            run = 0
    return "".join(pieces)


def breakable_text(text: str) -> str:
    """``text`` with invisible line-break chances (zero-width spaces) after path separators and
    inside long runs, so a word-wrapped label can break a long path instead of widening the window."""
    return re.sub(rf"\S{{{LONGEST_UNBROKEN + 1},}}", lambda match: _breakable_word(match.group()), text)


def open_error_text(path: Path, error: Exception) -> str:
    """``Cannot open clip.mp4: ...`` without the path a second time where the error begins with it
    (``/media/clip.mp4 looks like MP4...`` reads ``Cannot open clip.mp4: it looks like MP4...``)."""
    text = str(error)
    spellings = {str(path), str(Path(path).absolute()), str(Path(path).resolve())}
    for shown in sorted(spellings, key=len, reverse=True):
        if text.startswith(shown + ": "):
            return f"Cannot open {path.name}: {text[len(shown) + 2 :]}"
        if text.startswith(shown + " "):
            return f"Cannot open {path.name}: it {text[len(shown) + 1 :]}"
    return f"Cannot open {path.name}: {text}"


class MessageBar(QWidget):
    """A strip above the viewer for errors and warnings the user must see; closes with ×.

    It never widens the window: a long path in a message wraps (``breakable_text``).
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        close = QPushButton("×")
        close.setFlat(True)
        close.setFixedWidth(24)
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self._text = ""
        self.context = ""
        self.level = ""
        self.hide()

    def show_message(self, text: str, level: str = "error", context: str = CLIP) -> None:
        background, foreground = style.message_colours(level)
        # a QWidget subclass paints a style-sheet background only with WA_StyledBackground
        self.setStyleSheet(
            f"MessageBar {{ background: {background.name()}; }} QLabel {{ color: {foreground.name()}; }}"
        )
        self.level = level
        self._text, self.context = text, context
        self.label.setText(breakable_text(text))
        self.label.setToolTip(text)
        self.show()

    def text(self) -> str:
        """The message shown (as given, without the break chances), or "" when hidden."""
        return self._text if self.isVisible() else ""


class MainWindow(QMainWindow):
    """The Chronoscope preview app's one window."""

    analysis_shown = pyqtSignal(str)  # the clip path whose analysis (or its absence) is now shown
    preview_shown = pyqtSignal(object)  # PreviewFrame

    def __init__(self, link: EngineLink, settings: AppSettings | None = None):
        super().__init__()
        self.link = link
        self.settings = settings or AppSettings()
        self.source: FrameSource | None = None
        self.clock: SourceClock | None = None  # labels source positions with the file's timecode
        self.position = Fraction(0)
        self.target_speed = self.settings.target_speed
        self.backend = self.settings.backend
        self.codec_choice = self.settings.codec  # None: each render follows its source
        self.in_frame: int | None = None
        self.out_frame: int | None = None
        self.analyses: dict[str, SpeedAnalysis] = {}
        self.analysis_messages: dict[str, str] = {}
        self.ramps: dict[str, DrawnRamp] = {}  # per clip path, for this session
        self.timeline_path: Path | None = None
        self.timeline_segments: list = []
        self.timeline_rate: Fraction | None = None  # the rate the timeline was read at
        self.timeline_edl_rate: Fraction | None = None  # for an EDL: the rate chosen for it
        # a timeline clip's target speed is its own speed (not saved); the user's choice for
        # plain clips comes back when one is opened
        self.clip_target_from_timeline = False
        self.chosen_target_speed = self.target_speed
        # asks an EDL's frame rate (path, default) -> rate or None; tests replace it
        self.edl_rate_provider = lambda path, default: ask_edl_rate(self, path, default)
        # asks whether an image opens as its sequence (path, sequence, default rate) -> rate,
        # OPEN_ONE_FRAME or None; tests replace it
        self.sequence_rate_provider = lambda path, sequence, default: ask_sequence_rate(
            self, path, sequence, default
        )
        # asks whether to close while renders wait for an engine (how many) -> close?; tests replace it
        self.close_provider = lambda count: ask_close_with_waiting(self, count)
        self.shuttle = 0
        self.last_preview: PreviewFrame | None = None
        self._current_request: PreviewRequest | None = None
        self.preview_error = ""
        self._engine_status = ""
        self.waiting_renders: list[str] = []  # job ids of renders no engine has yet, in order
        self.output_namings: dict[str, OutputNaming] = {}  # how each render's output was named
        self.output_renames: dict[str, int] = {}  # names found taken since each render was sent
        self.setWindowTitle("Chronoscope")
        self.setAcceptDrops(True)
        self._build_widgets()
        self._build_actions()
        self.field_keys = give_fields_their_keys(self)  # a focused list takes arrows and letters
        self._connect_link()
        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._play_tick)
        self.refine_timer = QTimer(self)
        self.refine_timer.setSingleShot(True)
        self.refine_timer.setInterval(REFINE_AFTER_MS)
        self.refine_timer.timeout.connect(self._refine)
        self.resize(1280, 800)
        self._restore_layout()
        self._show_engine_state(link.state)

    # ------------------------------------------------------------------ building

    def _build_widgets(self) -> None:
        self.message_bar = MessageBar()
        self.viewer = ViewerWidget()
        self.viewer.set_compare_mode(self.settings.compare_mode)
        self.viewer.set_show_risk(self.settings.show_risk)
        self.timecode_label = QLabel("--:--:--:--")
        self.timecode_label.setStyleSheet(
            "font-family: monospace; font-size: 15px; font-weight: bold; color: #e8e8e8;"
        )
        self.frame_label = QLabel("")
        self.frame_label.setStyleSheet("font-family: monospace; color: #9aa0aa;")
        self.shuttle_label = QLabel("")
        self.shuttle_label.setStyleSheet("color: #5fa8ff; font-weight: bold;")
        transport = QWidget()
        transport_layout = QHBoxLayout(transport)
        transport_layout.setContentsMargins(8, 2, 8, 2)
        transport_layout.addWidget(self.timecode_label)
        transport_layout.addSpacing(16)
        transport_layout.addWidget(self.frame_label, 0)
        transport_layout.addWidget(self.shuttle_label)
        self.key_hint = hint = ElidedLabel("J K L · Space · ←/→ · I/O · W wipe · R risk")
        hint.setStyleSheet("color: #6d727b;")
        hint.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        hint.setMinimumWidth(0)
        hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # the position is never cut; the key hint gives way (it is in the menus too)
        self.frame_label.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)
        transport_layout.addWidget(hint, 1)

        self.strip = TimelineStrip()
        self.curve = SpeedCurvePlot()
        self.curve.set_target_speed(self.target_speed)
        self.strip.scrubbed.connect(self.seek)
        self.curve.scrubbed.connect(self.seek)
        self.curve.ramp_edited.connect(self._ramp_edited)
        self.curve.ramp_selection_changed.connect(self._ramp_key_selected)
        self.ramp_bar = QWidget()
        ramp_layout = QHBoxLayout(self.ramp_bar)
        ramp_layout.setContentsMargins(8, 0, 8, 0)
        ramp_layout.setSpacing(6)
        title = QLabel("SPEED")
        title.setStyleSheet("color: #8b9099; font-size: 11px; font-weight: bold;")
        self.ramp_button = QToolButton()
        self.clear_ramp_button = QToolButton()
        self.ramp_hint = QLabel("click adds a keyframe · drag moves it · right-click or Del deletes it")
        self.ramp_hint.setStyleSheet("color: #8b9099;")
        self.ramp_hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.ramp_hint.hide()
        self.ramp_summary_label = ElidedLabel("")
        self.ramp_summary_label.setStyleSheet("color: #ff9d3c;")
        self.ramp_summary_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        legend = QLabel(
            '<span style="color:#e8f1ff">━</span> detected (left axis)&nbsp;&nbsp;'
            '<span style="color:#ff9d3c">━</span> ramp (right axis)'
        )
        legend.setStyleSheet("color: #8b9099;")
        ramp_layout.addWidget(title)
        ramp_layout.addSpacing(8)
        ramp_layout.addWidget(legend)
        ramp_layout.addSpacing(12)
        ramp_layout.addWidget(self.ramp_button)
        ramp_layout.addWidget(self.clear_ramp_button)
        ramp_layout.addWidget(self.ramp_hint, 1)
        ramp_layout.addWidget(self.ramp_summary_label)  # its whole text first; the hint takes the rest
        self.strip.item_selected.connect(self.select_timeline_item)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(0)
        top_layout.addWidget(self.message_bar)
        top_layout.addWidget(self.viewer, 1)
        top_layout.addWidget(transport)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.setSpacing(2)
        bottom_layout.addWidget(self.strip)
        bottom_layout.addWidget(self.ramp_bar)
        bottom_layout.addWidget(self.curve, 1)

        self.left_split = QSplitter(Qt.Orientation.Vertical)
        self.left_split.addWidget(top)
        self.left_split.addWidget(bottom)
        self.left_split.setStretchFactor(0, 3)
        self.left_split.setStretchFactor(1, 1)

        self.inspector = Inspector()
        self.inspector.set_target_speed(self.target_speed)
        self.inspector.set_ramp_summary(None)
        self.inspector.target_speed_changed.connect(self.set_target_speed)
        self.inspector.backend_changed.connect(self.set_backend)
        self.inspector.codec_changed.connect(self.set_codec)
        self.inspector.show_codec(self.codec_choice, None)
        self.inspector.render_requested.connect(self.queue_render)
        self.queue = RenderQueue()
        self.queue.cancel_requested.connect(self.cancel_render)
        self.queue.retry_requested.connect(self.retry_render)
        self.queue.check_frame_requested.connect(self.go_to_frame_to_check)
        self.side_tabs = QTabWidget()
        # scrolls rather than forcing the window taller when the analysis has many evidence lines
        self.inspector_scroll = QScrollArea()
        self.inspector_scroll.setWidget(self.inspector)
        self.inspector_scroll.setWidgetResizable(True)
        self.inspector_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.inspector_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.inspector_scroll.setMinimumWidth(
            self.inspector.minimumSizeHint().width()
            + self.inspector_scroll.verticalScrollBar().sizeHint().width()
        )
        inspector_tab = QWidget()
        inspector_layout = QVBoxLayout(inspector_tab)
        inspector_layout.setContentsMargins(0, 0, 0, 0)
        inspector_layout.setSpacing(4)
        inspector_layout.addWidget(self.inspector_scroll, 1)
        # Queue render stays in view at any window size, however long the analysis is
        render_row = QHBoxLayout()
        render_row.setContentsMargins(12, 0, 12, 6)
        render_row.addWidget(self.inspector.render_button)
        inspector_layout.addLayout(render_row)
        self.side_tabs.addTab(inspector_tab, "Inspector")
        self.side_tabs.addTab(self.queue, "Render queue")

        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.addWidget(self.left_split)
        self.main_split.addWidget(self.side_tabs)
        self.main_split.setStretchFactor(0, 4)
        self.main_split.setStretchFactor(1, 1)
        self.setCentralWidget(self.main_split)

        self.status_bar = ElidingStatusBar()  # long messages end in "…" before the engine's state
        self.setStatusBar(self.status_bar)
        self.engine_label = QLabel()
        self.engine_dot = QLabel("●")
        self.engine_button = QPushButton("Start engine")
        self.engine_button.setFlat(True)
        self.engine_button.clicked.connect(self.link.start_engine)
        status = self.statusBar()
        status.addPermanentWidget(self.engine_dot)
        status.addPermanentWidget(self.engine_label)
        status.addPermanentWidget(self.engine_button)

    def _action(
        self, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None, menu=None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        if menu is not None:
            menu.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open, file_menu)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self._refresh_recent()
        file_menu.addSeparator()
        self._action("&Quit", self.close, QKeySequence.StandardKey.Quit, file_menu)

        view_menu = bar.addMenu("&View")
        group = QActionGroup(self)
        self.side_action = self._action(
            "Side by side", lambda: self.set_compare_mode(SIDE_BY_SIDE), None, view_menu
        )
        self.wipe_action = self._action("Wipe", lambda: self.set_compare_mode(WIPE), None, view_menu)
        for action in (self.side_action, self.wipe_action):
            action.setCheckable(True)
            group.addAction(action)
        (self.wipe_action if self.viewer.compare_mode == WIPE else self.side_action).setChecked(True)
        self._action("Toggle wipe", self.toggle_wipe, "W", view_menu)
        view_menu.addSeparator()
        self.risk_action = self._action(
            "Risk overlay", lambda: self.set_show_risk(self.risk_action.isChecked()), "R", view_menu
        )
        self.risk_action.setCheckable(True)
        self.risk_action.setChecked(self.viewer.show_risk)

        play_menu = bar.addMenu("&Playback")
        self._action("Play / Stop", self.toggle_play, "Space", play_menu)
        self._action("Play backward (J)", lambda: self.shuttle_key(-1), "J", play_menu)
        self._action("Stop (K)", self.stop, "K", play_menu)
        self._action("Play forward (L)", lambda: self.shuttle_key(1), "L", play_menu)
        play_menu.addSeparator()
        self._action("Previous frame", lambda: self.step(-1), "Left", play_menu)
        self._action("Next frame", lambda: self.step(1), "Right", play_menu)
        self._action("Back 10 frames", lambda: self.step(-10), "Shift+Left", play_menu)
        self._action("Forward 10 frames", lambda: self.step(10), "Shift+Right", play_menu)
        self._action("Previous segment", lambda: self.jump_segment(-1), "Up", play_menu)
        self._action("Next segment", lambda: self.jump_segment(1), "Down", play_menu)
        self._action("Go to start", lambda: self.seek(Fraction(0)), "Home", play_menu)
        self._action("Go to end", self.seek_end, "End", play_menu)
        self._action(
            "Next frame to check", lambda: self.step_to_check(1), CHECK_KEYS[1], play_menu
        ).setToolTip("The next frame the last finished render of this clip lists to check")
        self._action("Previous frame to check", lambda: self.step_to_check(-1), CHECK_KEYS[-1], play_menu)
        play_menu.addSeparator()
        self._action("Mark In", self.mark_in, "I", play_menu)
        self._action("Mark Out", self.mark_out, "O", play_menu)
        self._action("Clear In / Out", self.clear_marks, "Alt+X", play_menu)

        retime_menu = bar.addMenu("Re&time")
        self.ramp_action = self._action(
            "Draw speed ramp",
            lambda: self.set_ramp_mode(self.ramp_action.isChecked()),
            "Shift+R",
            retime_menu,
        )
        self.ramp_action.setCheckable(True)
        self.ramp_action.setToolTip(
            "Draw a speed ramp on the speed curve (Shift+R): click adds a keyframe, drag moves it, "
            "right-click or Delete removes it"
        )
        self.clear_ramp_action = self._action("Clear ramp", self.clear_ramp, None, retime_menu)
        self.clear_ramp_action.setToolTip("Remove the ramp: renders use the constant target speed again")
        self._action("Delete ramp keyframe", self.delete_ramp_keyframe, "Delete", retime_menu)
        self._action("Delete ramp keyframe (Backspace)", self.delete_ramp_keyframe, "Backspace")
        retime_menu.addSeparator()
        self._action("Import ramp…", self.import_ramp_dialog, None, retime_menu)
        self._action("Export ramp…", self.export_ramp_dialog, None, retime_menu)
        self.ramp_button.setDefaultAction(self.ramp_action)
        self.clear_ramp_button.setDefaultAction(self.clear_ramp_action)
        self.clear_ramp_action.setEnabled(False)

        render_menu = bar.addMenu("&Render")
        self._action("Queue render", self.queue_render, "Ctrl+R", render_menu)
        self.output_folder_action = self._action(
            "Output folder…", self.choose_output_folder, None, render_menu
        )
        self.default_folder_action = self._action(
            "Use the default output folder", self.use_default_output_folder, None, render_menu
        )
        self._show_output_folder()

        engine_menu = bar.addMenu("&Engine")
        self.start_engine_action = self._action("Start engine", self.link.start_engine, None, engine_menu)

    def _connect_link(self) -> None:
        self.link.state_changed.connect(self._show_engine_state)
        self.link.original_ready.connect(self._show_original)
        self.link.preview_ready.connect(self._show_preview)
        self.link.preview_failed.connect(self._preview_failed)
        self.link.analysis_ready.connect(self._analysis_ready)
        self.link.analysis_failed.connect(self._analysis_failed)
        self.link.analysis_interrupted.connect(self._analysis_interrupted)
        self.link.job_progress.connect(self.queue.update_progress)
        self.link.job_finished.connect(self._job_finished)

    def _restore_layout(self) -> None:
        for name, widget in (("main_split", self.main_split), ("left_split", self.left_split)):
            state = self.settings.layout(name)
            if state is not None:
                widget.restoreState(state)
        geometry = self.settings.layout("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.main_split.setSizes([900, 380])  # the side panel fits the render queue's columns
            self.left_split.setSizes([560, 220])

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files
        for path in recent:
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(recent))

    # ------------------------------------------------------------------ messages and engine state

    @property
    def engine_status(self) -> str:
        """The engine status this window shows; it follows ``link.state`` once Qt delivers the change."""
        return self._engine_status

    def show_message(self, text: str, level: str = "error", context: str = CLIP) -> None:
        """Show ``text`` above the viewer and in the status bar (errors never raise to the user);
        ``context`` says what it is about, so that it goes when that does (``clear_messages``)."""
        self.message_bar.show_message(text, level, context)
        self.statusBar().showMessage(text, 15000)

    def clear_messages(self, *contexts: str) -> None:
        """Take down the message about any of ``contexts``: what it described is gone."""
        if not self.message_bar.isVisible() or self.message_bar.context not in contexts:
            return
        if self.status_bar.full_message() == self.message_bar.text():
            self.statusBar().clearMessage()
        self.message_bar.hide()

    def _show_engine_state(self, state: EngineState) -> None:
        colours = {
            "connected": "#3fb27f",
            "starting": "#e3a33b",
            "lost": "#d9574f",
            "disconnected": "#8c8c8c",
        }
        self.engine_dot.setStyleSheet(f"color: {colours.get(state.status, '#8c8c8c')};")
        self.engine_label.setText(state.summary())
        self.engine_label.setToolTip(state.details() if state.status == "connected" else state.user_message())
        self.engine_button.setVisible(state.status in ("lost", "disconnected"))
        previous, self._engine_status = self._engine_status, state.status
        if state.status == "connected" and previous == "connected":
            return
        if state.status == "connected":
            self.inspector.set_backends(state.backends, self._usable_backend(state.backends))
            self.clear_messages(ENGINE)
            self._send_waiting_renders()
            if self.source is not None and self._clip_key() not in self.analyses:
                self._request_analysis()
            if self.source is not None:
                self._request_preview()
        elif state.status == "lost" or (state.status == "disconnected" and state.message):
            log.warning("engine %s: %s", state.status, state.message)
            self.show_message(state.user_message(), "error", ENGINE)

    def _usable_backend(self, served: list[str]) -> str:
        """The saved model when this engine serves it, else the default one (logged at WARNING)."""
        chosen = choose_backend(self.backend, served)
        if chosen != self.backend:
            self.statusBar().showMessage(
                f"Model {self.backend} is not available in this engine; using {chosen}", 15000
            )
        return chosen

    # ------------------------------------------------------------------ opening files

    def open_dialog(self) -> None:
        folder = self.settings.last_folder or Path.home()
        name, _ = QFileDialog.getOpenFileName(self, "Open a clip or a timeline", str(folder), MEDIA_FILTER)
        if name:
            self.open_path(Path(name))

    def open_path(
        self, path: Path, *, edl_rate: Fraction | None = None, sequence_rate: Fraction | None = None
    ) -> bool:
        """Open a clip, an image sequence or a timeline; a problem is shown in the window and
        returns False.

        An EDL is read at ``edl_rate``; without it the window asks (``edl_rate_provider``, default
        the rate last chosen for an EDL, which is remembered); cancelling opens nothing. An image
        that is one frame of a numbered sequence (or a pattern, ``A001.####.dpx``) opens as the
        sequence at ``sequence_rate``; without it the window asks (``sequence_rate_provider``):
        the sequence at a rate, the image alone, or nothing.
        """
        path = Path(path)
        if path.suffix.lower() == ".edl" and edl_rate is None:
            edl_rate = self.edl_rate_provider(path, self.settings.edl_rate)
            if edl_rate is None:
                return False
            self.settings.edl_rate = Fraction(edl_rate)
        try:
            if path.suffix.lower() in TIMELINE_SUFFIXES:
                self._open_timeline(path, edl_rate)
            else:
                media = self._media_to_open(path, sequence_rate)
                if media is None:
                    return False
                self._clear_timeline()
                self._open_clip(media)
        except ChronoscopeError as error:
            log.warning("cannot open %s: %s", path, error)
            self.show_message(open_error_text(path, error), "error", OPENING)
            return False
        self.settings.add_recent(path)
        self._refresh_recent()
        return True

    def _media_to_open(self, path: Path, sequence_rate: Fraction | None) -> Path | None:
        """``path``, or the description of the image sequence it is a frame of (``gui.sequences``)
        when the user opens it as one; None when the user cancelled."""
        sequence = sequence_around(path)
        if sequence is None:
            if sequence_rate is not None:
                raise UnsupportedOptionError(
                    f"{path.name} is not a frame of an image sequence of 2 or more frames "
                    "(numbered files such as A001.1001.dpx); open it without a sequence rate"
                )
            return path
        if sequence_rate is None:
            answer = self.sequence_rate_provider(path, sequence, self.settings.sequence_rate)
            if answer is None:
                return None
            if answer == OPEN_ONE_FRAME:  # a pattern names no single image: nothing to open
                return None if is_pattern(path) else path
            sequence_rate = Fraction(answer)
            self.settings.sequence_rate = sequence_rate
        return sequence_media(path, sequence_rate)

    def _open_clip(self, path: Path, *, range_frames: tuple[int, int] | None = None) -> None:
        source = open_frame_source(path)
        if self.source is not None:
            self.source.close()
        self.source = source
        self.clear_messages(OPENING, CLIP, PREVIEW, RAMP, RENDER)
        info = source.info
        shown = self.timeline_path.name if self.timeline_path else info.display_name or path.name
        self.setWindowTitle(f"{shown} — Chronoscope")
        self.clock = SourceClock.of(info.rate, info.start_timecode)
        self.inspector.set_clip(info)
        self.inspector.set_timecode(self.clock, in_timeline=self.timeline_path is not None)
        self.inspector.show_codec(self.codec_choice, self._source_codec())
        self.strip.set_clip(info.frame_count, info.rate, self.clock)
        self.curve.set_clip(info.frame_count, info.rate, self.clock)
        self.curve.set_ramp(None, 0)
        self.viewer.clear(DROP_HERE)
        if range_frames is not None:
            self.in_frame, self.out_frame = range_frames
        else:
            self.in_frame = self.out_frame = None
        self._marks_changed()
        if info.truncated:
            log.warning("%s", info.truncation_text())
            self.show_message(info.truncation_text(), "warning", CLIP)
        if info.missing_frames:
            log.warning("%s", info.missing_text())
            self.show_message(info.missing_text(), "warning", CLIP)
        self.position = Fraction(self.in_frame or 0)
        key = self._clip_key()
        self._show_analysis(key)
        if key not in self.analyses:
            self._request_analysis()
        self._position_changed()

    def _clear_timeline(self) -> None:
        self.timeline_path = None
        self.timeline_segments = []
        self.timeline_rate = self.timeline_edl_rate = None
        self.strip.set_timeline([])
        self.inspector.set_timeline(None)
        if self.clip_target_from_timeline:
            self.clip_target_from_timeline = False
            self.set_target_speed(self.chosen_target_speed)

    def _open_timeline(self, path: Path, edl_rate: Fraction | None = None) -> None:
        from engine.timeline.io import media_base_dir, read_timeline
        from engine.timeline.segments import list_segments, timeline_rate

        is_edl = path.suffix.lower() == ".edl"
        timeline = read_timeline(path, rate=float(edl_rate) if is_edl and edl_rate else None)
        segments = [
            s
            for s in list_segments(timeline, base_dir=media_base_dir(path), check_time_warps=False)
            if s.track_kind == "Video"
        ]
        if not segments:
            raise TimelineError(
                f"{path} has no video clips to preview; it needs at least one on a video track"
            )
        items = []
        for segment in segments:
            try:
                scalar = segment.time_scalar
            except ChronoscopeError:
                scalar = None
            items.append(
                TimelineItem(
                    label=segment.clip_name,
                    record_start_frames=segment.record_start_frames,
                    record_frames=segment.record_frames,
                    time_scalar=scalar,
                    media_ok=segment.media is not None and segment.media.exists,
                )
            )
        self.timeline_path = path
        self.timeline_segments = segments
        self.timeline_edl_rate = Fraction(edl_rate) if is_edl and edl_rate else None
        self.timeline_rate = segments[0].timeline_rate if segments else timeline_rate(timeline)
        rate_note = style.rate_text(self.timeline_rate)
        if self.timeline_edl_rate is not None:
            rate_note = f"EDL read at {rate_note}"
        self.inspector.set_timeline(f"{path.name} · {len(segments)} clips · {rate_note}")
        first = next((i for i, item in enumerate(items) if item.media_ok), 0)
        # select_timeline_item selects the clip once it is shown
        self.strip.set_timeline(items, rate_note=rate_note)
        self.select_timeline_item(first)

    def select_timeline_item(self, index: int) -> None:
        """Load the media of the timeline's clip ``index`` into the viewer, with its source range."""
        if not 0 <= index < len(self.timeline_segments):
            return
        segment = self.timeline_segments[index]
        media = segment.media_path
        if media is None or not segment.media.exists:
            where = segment.media_problem or segment.target_url or "no file named"
            log.warning("%s: media not found: %s", segment.describe(), where)
            self.show_message(self._missing_media_text(segment.clip_name, where), "warning", CLIP)
            return
        start = int(_file_frame(segment))
        length = max(
            1, int(segment.source_duration_frames * (segment.time_scalar if segment.time_scalar else 1))
        )
        try:
            self._open_clip(media, range_frames=(start, start + length))
        except ChronoscopeError as error:
            self.show_message(f"Cannot open clip {segment.clip_name!r}: {error}", "error", CLIP)
            return
        self.strip.set_selected(index)
        end = min(start + length, self.source.info.frame_count)
        self.in_frame, self.out_frame = start, end
        self._marks_changed()
        # the clip's own speed is its target (100 %: nothing to generate); not the user's choice
        scalar = segment.time_scalar if segment.is_retimed else Fraction(1)
        self.clip_target_from_timeline = True
        self.set_target_speed(Fraction(scalar) if 0 < scalar < 1 else Fraction(1), remember=False)

    def _missing_media_text(self, clip_name: str, where: str) -> str:
        source = self.source.info if self.source is not None else None
        shown = f"; {source.display_name or source.path.name} stays open" if source is not None else ""
        return f"The media of clip {clip_name!r} is missing ({where}){shown}."

    def _clip_key(self) -> str:
        return str(self.source.info.path) if self.source else ""

    # ------------------------------------------------------------------ analysis

    def _request_analysis(self) -> None:
        if self.source is None:
            return
        key = self._clip_key()
        if self.source.info.frame_count < 2:
            self.analysis_messages[key] = STILL_IMAGE_TEXT
            self._show_analysis(key)
            return
        if self._engine_status != "connected":  # the window asks again when it shows "connected"
            self.analysis_messages[key] = WAITING_TEXT
            self._show_analysis(key)
            return
        self.analysis_messages[key] = ANALYSING_TEXT
        self._show_analysis(key)
        info = self.source.info
        self.link.analyse(info.path, info.rate, info.analysed_frames or info.frame_count)

    def _show_analysis(self, key: str) -> None:
        analysis = self.analyses.get(key)
        message = self.analysis_messages.get(key, "")
        self.inspector.set_analysis(analysis, "" if analysis else message)
        self.curve.set_analysis(analysis, message)
        self.strip.set_segments(
            analysis,
            "" if analysis else self._strip_note(message),
        )
        if self.timeline_segments and analysis is not None:
            for index, segment in enumerate(self.timeline_segments):
                if segment.media_path is not None and str(segment.media_path) == key:
                    self.strip.set_item_class(index, analysis.speed_class)

    def analysis_settled(self) -> bool:
        """Whether the current clip shows what its speed analysis will show: the result, the
        engine's reason for having none, or why there is nothing to analyse (a still image, a clip
        too short); not while it is being analysed or waits for the engine."""
        key = self._clip_key()
        if key in self.analyses:
            return True
        message = self.analysis_messages.get(key, "")
        return bool(message) and message not in (ANALYSING_TEXT, WAITING_TEXT, INTERRUPTED_TEXT)

    @staticmethod
    def _strip_note(message: str) -> str:
        if message == STILL_IMAGE_TEXT:
            return "still image"
        if message in (WAITING_TEXT, INTERRUPTED_TEXT):
            return "analysis waits for the engine"
        return "analysing…" if message.startswith("Analysing") else "speed not analysed"

    def _analysis_ready(self, key: str, analysis: SpeedAnalysis) -> None:
        self.analyses[key] = analysis
        self.analysis_messages.pop(key, None)
        if key == self._clip_key():
            self._show_analysis(key)
            self.statusBar().showMessage(f"Speed: {analysis.label}, {style.speed_text(analysis.speed)}", 8000)
            self.analysis_shown.emit(key)

    def _analysis_failed(self, key: str, message: str, unavailable: bool) -> None:
        text = (
            f"Speed analysis unavailable: {message}" if unavailable else f"Speed analysis failed: {message}"
        )
        self.analysis_messages[key] = text
        if key == self._clip_key():
            self._show_analysis(key)
            self.statusBar().showMessage(text, 15000)
            self.analysis_shown.emit(key)

    def _analysis_interrupted(self, key: str) -> None:
        """The engine stopped during the analysis of ``key``: it runs again when one answers (the
        window asks on "connected"; an engine that answers still, one started meanwhile, is asked
        once the stopped one is seen gone)."""
        self.analysis_messages[key] = INTERRUPTED_TEXT
        if key == self._clip_key():
            self._show_analysis(key)
            self.statusBar().showMessage(INTERRUPTED_TEXT, 15000)
            self.analysis_shown.emit(key)
        QTimer.singleShot(REANALYSE_AFTER_MS, lambda: self._reanalyse_if_connected(key))

    def _reanalyse_if_connected(self, key: str) -> None:
        if (
            key == self._clip_key()
            and self.analysis_messages.get(key) == INTERRUPTED_TEXT
            and self._engine_status == "connected"
            and self.link.state.status == "connected"
        ):
            self._request_analysis()

    # ------------------------------------------------------------------ playhead

    def _last_frame(self) -> int:
        return self.source.info.frame_count - 1 if self.source else 0

    def grid(self) -> ConstantGrid | RampGrid:
        """The retimed frame grid: the ramp's when one is drawn, else the constant target speed's;
        either counts output frames from the In mark, as the render numbers them."""
        ramp = self.current_ramp()
        origin = self.ramp_origin()
        if ramp is None:
            return ConstantGrid(self.target_speed, origin)
        return RampGrid(ramp.speed_ramp(origin), origin)

    def snap(self, frames: Fraction) -> Fraction:
        """The nearest position on the retimed frame grid, inside the clip."""
        grid = self.grid()
        position = grid.position(grid.nearest(Fraction(frames)))
        return min(max(Fraction(0), position), Fraction(self._last_frame()))

    def seek(self, frames: Fraction) -> None:
        """Move the playhead to ``frames`` (source frames), snapped to the retimed grid."""
        if self.source is None:
            return
        position = self.snap(Fraction(frames))
        if position != self.position or self.viewer.original is None:
            self.position = position
            self._position_changed()

    def seek_end(self) -> None:
        self.seek(Fraction(self._last_frame()))

    def step(self, output_frames: int) -> None:
        """Move by ``output_frames`` frames of the retimed clip (one press of an arrow key)."""
        self.stop()
        grid = self.grid()
        self.seek(grid.position(grid.nearest(self.position) + output_frames))

    def jump_segment(self, direction: int) -> None:
        analysis = self.analyses.get(self._clip_key())
        if self.source is None or analysis is None:
            return
        rate = self.source.info.rate
        bounds = sorted(
            {s.start_s * rate for s in analysis.segments} | {s.end_s * rate for s in analysis.segments}
        )
        ahead = [b for b in bounds if (b > self.position if direction > 0 else b < self.position)]
        if ahead:
            self.seek(ahead[0] if direction > 0 else ahead[-1])

    def _position_changed(self) -> None:
        if self.source is None:
            return
        self._update_transport()
        self.strip.set_playhead(self.position)
        self.curve.set_playhead(self.position)
        self._request_preview()

    def retimed_frame(self) -> int | None:
        """The render's frame number at the playhead (counted from In, as its report counts the
        frames to check), or None where the playhead is outside In–Out (not rendered)."""
        if self.source is None:
            return None
        start, end = self._render_range()
        grid = self.grid()
        output_frame = grid.nearest(self.position)
        if output_frame < 0 or output_frame >= grid.output_frames(start, end):
            return None
        return output_frame

    def _update_transport(self) -> None:
        info = self.source.info
        grid = self.grid()
        output_frame = self.retimed_frame()
        if output_frame is None:
            retimed = "before In" if self.position < self._render_range()[0] else "after Out"
            retimed = f"not rendered ({retimed})"
        else:
            speed = ""
            if isinstance(grid, RampGrid):
                speed = f" at {percent_text(grid.ramp.speed_at(output_frame))} (ramp)"
            retimed = f"retimed frame {output_frame}{speed}"
        self.timecode_label.setText(self.clock.text(self.position))
        source = f"source {float(self.position):.3f} / {info.frame_count - 1}"
        self.frame_label.setText(f"{source}   ·   {retimed}")

    def _request_preview(self) -> None:
        if self.source is None:
            return
        self.refine_timer.stop()
        self.preview_error = ""
        serial = self.link.next_serial()
        self.viewer.set_pending(True)
        self._current_request = PreviewRequest(serial, self.source, self.position, self.backend)
        self.link.request_preview(self._current_request)

    def _refine(self) -> None:
        """The playhead rested on a draft: ask for the same frame at full quality."""
        request = self._current_request
        if request is not None and self.link.is_current(request.serial) and not self.shuttle:
            self.link.request_refine(request)

    def _show_original(self, serial: int, position: Fraction, frame) -> None:
        if not self.link.is_current(serial):
            return
        base = int(position)
        self.viewer.set_original(frame, f"ORIGINAL · frame {base}")
        if position == base:
            self.viewer.set_generated(frame, None, f"RETIMED · source frame {base}")
            self.inspector.preview_label.setText("source frame (nothing to generate)")
            self.inspector.risk_label.setText("—")

    def _show_preview(self, preview: PreviewFrame) -> None:
        if not self.link.is_current(preview.serial):
            return
        phase = preview.position_frames - int(preview.position_frames)
        quality = " (draft)" if preview.draft else ""
        self.viewer.set_generated(
            preview.frame,
            preview.risk,
            f"RETIMED · {preview.backend}{quality} · +{phase.numerator}/{phase.denominator}",
        )
        self.inspector.preview_label.setText(f"{preview.backend}{quality}, {preview.latency_s * 1000:.0f} ms")
        if preview.draft:
            self.refine_timer.start()
        check = " · check this frame" if preview.check else ""
        notes = f" · {'; '.join(preview.notes)}" if preview.notes else ""
        self.inspector.risk_label.setText(
            f"{preview.risk_score:.2f}, local {preview.risk_local:.2f}{check}{notes}"
        )
        self.last_preview = preview
        self.clear_messages(PREVIEW)
        self.preview_shown.emit(preview)

    def _preview_failed(self, serial: int, message: str) -> None:
        """No generated frame for the playhead: take down the last one (it shows another instant)
        and its figures; the engine's own message, when it is the cause, says what to do."""
        if not self.link.is_current(serial):
            return
        self.inspector.preview_label.setText("—")
        self.inspector.risk_label.setText("—")
        info = self.source.info if self.source is not None else None
        if info is not None and int(self.position) in info.missing_frames:
            name = info.missing_names[info.missing_frames.index(int(self.position))]
            self.viewer.clear(f"Frame {int(self.position)} ({name}) is missing from {info.display_name}.")
            return
        after = int(self.position) + 1
        if info is not None and self.position != int(self.position) and after in info.missing_frames:
            name = info.missing_names[info.missing_frames.index(after)]
            self.viewer.clear_generated(f"RETIMED · none: frame {after} ({name}) is missing")
            return
        if self._engine_status in ("", "starting", "disconnected") and not self.link.state.message:
            self.viewer.clear_generated("RETIMED · waiting for the engine")
            return
        self.preview_error = message
        if self._engine_status != "connected":
            self.viewer.clear_generated("RETIMED · no preview (no engine)")
            return
        self.viewer.clear_generated("RETIMED · no preview")
        self.show_message(f"Preview failed: {message}", "warning", PREVIEW)

    # ------------------------------------------------------------------ frames to check

    def step_to_check(self, direction: int) -> bool:
        """C / Shift+C: the playhead to the next (previous) frame to check of the render selected
        in the queue, else of the last render of this clip that lists some."""
        selected = self.queue.selected_job()
        if selected is not None and self.queue.entries[selected].frames_to_check:
            return self.go_to_frame_to_check(selected, direction)
        path = self.source.info.path if self.source is not None else None
        for job_id, entry in reversed(self.queue.entries.items()):
            if entry.frames_to_check and Path(entry.order.source).resolve() == path:
                return self.go_to_frame_to_check(job_id, direction)
        self.statusBar().showMessage("No finished render of this clip lists frames to check.", 8000)
        return False

    def go_to_frame_to_check(self, job_id: str, direction: int = 1) -> bool:
        """Move the playhead to the next (``direction`` 1) or previous (-1) frame that render
        ``job_id``'s report lists to check, after the retimed frame shown (wrapping round). The
        render's In, Out and speed (or ramp) come back first where they differ, so the transport's
        retimed frame is the report's number."""
        entry = self.queue.entries.get(job_id)
        if entry is None or not entry.frames_to_check:
            return False
        order = entry.order
        if self.source is None or self.source.info.path != Path(order.source).resolve():
            self.show_message(
                f"Open {Path(order.source).name} to go to the frames to check of {order.output.name}.",
                "info",
                RENDER,
            )
            return False
        self.stop()
        self._use_render_settings(order)
        frames = entry.frames_to_check
        shown = self.retimed_frame()
        if direction > 0:
            frame = next((f for f in frames if shown is None or f > shown), frames[0])
        else:
            frame = next((f for f in reversed(frames) if shown is not None and f < shown), frames[-1])
        self.seek(self.grid().position(frame))
        self.statusBar().showMessage(
            f"Frame to check {frame} of {order.output.name} ({frames.index(frame) + 1} of {len(frames)})",
            8000,
        )
        return True

    def _use_render_settings(self, order: RenderOrder) -> None:
        """In, Out and the speed (or ramp) of ``order``, where the window's differ."""
        if self._render_range() != (order.in_frame, order.out_frame):
            self.in_frame, self.out_frame = order.in_frame, order.out_frame
            self._marks_edited()
        if order.ramp is None:
            if self.current_ramp() is not None:
                self.clear_ramp()
            self.set_target_speed(order.speed)
            return
        ramp = parse_ramp([{"frame": frame, "speed": speed} for frame, speed in order.ramp])
        if self.current_ramp() is None or self.current_ramp().speed_ramp(order.in_frame) != ramp:
            drawn = DrawnRamp.from_speed_ramp(ramp, order.in_frame, self.source.info.frame_count)
            self.ramps[self._clip_key()] = drawn
            self._ramp_edited()

    # ------------------------------------------------------------------ playback (J/K/L)

    def shuttle_key(self, direction: int) -> None:
        """J and L: play that way; pressed again, play faster (up to 8x); K stops."""
        if self.source is None:
            return
        if self.shuttle == 0 or (self.shuttle > 0) != (direction > 0):
            self.shuttle = direction
        else:
            self.shuttle = max(-MAX_SHUTTLE, min(MAX_SHUTTLE, self.shuttle * 2))
        self._start_timer()

    def toggle_play(self) -> None:
        if self.shuttle:
            self.stop()
        else:
            self.shuttle_key(1)

    def _start_timer(self) -> None:
        rate = float(self.source.info.rate) if self.source else 25.0
        self.play_timer.start(max(5, round(1000 / rate)))
        self.shuttle_label.setText(f"{'◀' if self.shuttle < 0 else '▶'} {abs(self.shuttle)}x")

    def stop(self) -> None:
        self.shuttle = 0
        self.play_timer.stop()
        self.shuttle_label.setText("")

    def _play_tick(self) -> None:
        grid = self.grid()
        target = grid.position(grid.nearest(self.position) + self.shuttle)
        if target < 0 or target > self._last_frame():
            self.stop()
            return
        self.seek(target)

    # ------------------------------------------------------------------ marks, view, retime settings

    def mark_in(self) -> None:
        if self.source is not None:
            self.in_frame = int(self.position)
            if self.out_frame is not None and self.out_frame <= self.in_frame:
                self.out_frame = None
            self._marks_edited()

    def mark_out(self) -> None:
        if self.source is not None:
            self.out_frame = int(self.position) + 1
            if self.in_frame is not None and self.in_frame >= self.out_frame:
                self.in_frame = None
            self._marks_edited()

    def clear_marks(self) -> None:
        self.in_frame = self.out_frame = None
        self._marks_edited()

    def _marks_edited(self) -> None:
        """In or Out moved by the user: the retimed grid starts at In, so the playhead moves onto it."""
        self._marks_changed()
        self._resnap()

    def _resnap(self) -> None:
        if self.source is None:
            return
        position = self.snap(self.position)
        if position != self.position:
            self.position = position
            self._position_changed()
        else:
            self._update_transport()

    def _render_range(self) -> tuple[int, int]:
        last = self.source.info.frame_count if self.source else 0
        return (self.in_frame or 0, self.out_frame if self.out_frame is not None else last)

    def _marks_changed(self) -> None:
        self.strip.set_marks(self.in_frame, self.out_frame)
        self.curve.set_marks(self.in_frame, self.out_frame)
        self._show_ramp()
        if self.source is None:
            self.inspector.range_label.setText("—")
            return
        still = self.source.info.frame_count < 2
        self.inspector.render_button.setEnabled(not still)
        self.inspector.render_button.setToolTip(STILL_RENDER_TEXT if still else RENDER_TIP)
        if still:
            self.inspector.range_label.setText("— (a still image: nothing to retime)")
            self.inspector.range_label.setToolTip(STILL_RENDER_TEXT)
            self._update_transport()
            return
        start, end = self._render_range()
        out_frames = self.grid().output_frames(start, end)
        # Out shows the last frame included (the render's out_frame is the next one, exclusive)
        self.inspector.range_label.setText(
            f"{self.clock.frame_text(start)} – {self.clock.frame_text(end - 1)}"
            f"  ({end - start} → {style.frames_text(out_frames)})"
        )
        self.inspector.range_label.setToolTip(
            f"source frames {start} to {end - 1} ({style.frames_text(end - start)}), "
            f"{style.frames_text(out_frames)} once retimed"
        )
        self._update_transport()  # the retimed frame counts from In

    def set_compare_mode(self, mode: str) -> None:
        self.viewer.set_compare_mode(mode)
        (self.wipe_action if mode == WIPE else self.side_action).setChecked(True)
        self.settings.compare_mode = mode

    def toggle_wipe(self) -> None:
        self.set_compare_mode(SIDE_BY_SIDE if self.viewer.compare_mode == WIPE else WIPE)

    def set_show_risk(self, show: bool) -> None:
        self.viewer.set_show_risk(show)
        self.risk_action.setChecked(show)
        self.settings.show_risk = show

    def set_target_speed(self, speed: Fraction, *, remember: bool = True) -> None:
        """Retime at ``speed``. The user's choice for a plain clip (``remember``) is saved as the
        default; a timeline clip's own speed, or a choice made while one is shown, is not."""
        if speed is None:
            return
        speed = Fraction(speed)
        if remember and not self.clip_target_from_timeline:
            self.chosen_target_speed = speed
            self.settings.target_speed = speed
        self.inspector.show_target_speed(speed)
        if speed == self.target_speed:
            return
        self.target_speed = speed
        self._marks_changed()
        if self.source is not None:
            self.position = self.snap(self.position)
            self._position_changed()

    # ------------------------------------------------------------------ speed ramp

    def current_ramp(self) -> DrawnRamp | None:
        """The current clip's ramp when it has keyframes; None means the constant target speed."""
        ramp = self.ramps.get(self._clip_key()) if self.source is not None else None
        return ramp if ramp else None

    def ramp_origin(self) -> int:
        """The source frame where the ramp's output frame 0 is: the In mark, or the clip's start."""
        return self._render_range()[0]

    def ramp_json(self) -> list[dict] | None:
        """The current ramp in the engine's format (``engine.retime.ramp``), or None."""
        ramp = self.current_ramp()
        return ramp.to_json(self.ramp_origin()) if ramp is not None else None

    def _editable_ramp(self) -> DrawnRamp | None:
        if self.source is None:
            return None
        key = self._clip_key()
        if key not in self.ramps:
            self.ramps[key] = DrawnRamp(self.source.info.frame_count)
        return self.ramps[key]

    def set_ramp_mode(self, on: bool) -> None:
        """Ramp mode: clicks on the speed curve add, move and delete ramp keyframes (Shift+R)."""
        if on and self.source is None:
            self.show_message("Open a clip before drawing a speed ramp.", "warning", RAMP)
            on = False
        self.ramp_action.setChecked(on)
        self.curve.set_ramp_mode(on)
        self.ramp_hint.setVisible(on)
        self._show_ramp()

    def add_ramp_keyframe(self, source_frames: Fraction, speed: Fraction) -> int:
        """Add a keyframe to the current clip's ramp (as a click in ramp mode does); its index."""
        ramp = self._editable_ramp()
        if ramp is None:
            raise UnsupportedOptionError("open a clip before adding speed ramp keyframes")
        index = ramp.add(Fraction(source_frames), Fraction(speed))
        self._ramp_edited()
        return index

    def clear_ramp(self) -> None:
        """Remove the current clip's ramp: the constant target speed applies again."""
        ramp = self.ramps.get(self._clip_key())
        if ramp:
            ramp.clear()
            self._ramp_edited()

    def delete_ramp_keyframe(self) -> None:
        if self.curve.ramp_mode:
            self.curve.delete_selected_key()

    def import_ramp(self, path: Path) -> bool:
        """Replace the current clip's ramp by a ramp file (``chronoscope retime --ramp`` JSON, its
        frame 0 at the In mark); a problem is shown in the window and returns False."""
        path = Path(path)
        if self.source is None:
            self.show_message("Open a clip before importing a speed ramp.", "warning", RAMP)
            return False
        try:
            speed_ramp = load_ramp(path)
        except ChronoscopeError as error:
            self.show_message(f"Cannot import the ramp: {error}", "error", RAMP)
            return False
        origin = self.ramp_origin()
        drawn = DrawnRamp.from_speed_ramp(speed_ramp, origin, self.source.info.frame_count)
        self.ramps[self._clip_key()] = drawn
        self._ramp_edited()
        if drawn.speed_ramp(origin) != speed_ramp:
            message = (
                f"ramp {path.name} was adjusted to fit the app: speeds {percent_text(MIN_RAMP_SPEED)} "
                "to 100%, keyframes inside the clip and at least a source frame apart"
            )
            log.warning(message)
            self.show_message(message.capitalize(), "warning", RAMP)
        return True

    def export_ramp(self, path: Path) -> bool:
        """Write the current ramp as a ``chronoscope retime --ramp`` file (frame 0 at the In mark)."""
        ramp_json = self.ramp_json()
        if ramp_json is None:
            self.show_message("There is no speed ramp to export; draw one first (Shift+R).", "warning", RAMP)
            return False
        try:
            write_text_atomic(Path(path), json.dumps(ramp_json, indent=2) + "\n")
        except OSError as error:
            self.show_message(f"Cannot write the ramp to {path}: {error}", "error", RAMP)
            return False
        self.statusBar().showMessage(f"Ramp written to {path}", 8000)
        return True

    def import_ramp_dialog(self) -> None:
        folder = self.settings.last_folder or Path.home()
        name, _ = QFileDialog.getOpenFileName(self, "Import a speed ramp", str(folder), RAMP_FILTER)
        if name:
            self.import_ramp(Path(name))

    def export_ramp_dialog(self) -> None:
        folder = self.settings.last_folder or Path.home()
        name, _ = QFileDialog.getSaveFileName(
            self, "Export the speed ramp", str(folder / "ramp.json"), RAMP_FILTER
        )
        if name:
            self.export_ramp(Path(name))

    def _show_ramp(self) -> None:
        shown = self.ramps.get(self._clip_key()) if self.source is not None else None
        if shown is None and self.curve.ramp_mode:
            shown = self._editable_ramp()
        origin = self.ramp_origin() if self.source is not None else 0
        self.curve.set_ramp(shown, origin)
        ramp = self.current_ramp()
        self.clear_ramp_action.setEnabled(ramp is not None)
        self.curve.set_target_speed(None if ramp is not None else self.target_speed)
        if ramp is None:
            self.inspector.set_ramp_summary(None)
            self.ramp_summary_label.set_full_text("")
            return
        speeds = " → ".join(percent_text(anchor.speed) for anchor in ramp.anchors)
        keys = f"{len(ramp)} keyframe{'s' if len(ramp) != 1 else ''}"
        self.inspector.set_ramp_summary(f"{speeds} ({keys})")
        self.ramp_summary_label.set_full_text(f"RAMP {speeds}")

    def _ramp_edited(self) -> None:
        self._marks_changed()
        selected = self.curve.selected_key
        ramp = self.current_ramp()
        if ramp is not None and selected is not None and selected < len(ramp):
            self.seek(ramp.handles(self.ramp_origin())[selected].source_frames)
        self._resnap()

    def _ramp_key_selected(self, index: int | None) -> None:
        ramp = self.current_ramp()
        if ramp is not None and index is not None and index < len(ramp):
            self.seek(ramp.handles(self.ramp_origin())[index].source_frames)

    def set_backend(self, name: str) -> None:
        if name == self.backend:
            return
        self.backend = name
        self.settings.backend = name
        self._request_preview()

    # ------------------------------------------------------------------ renders

    def output_folder(self) -> Path:
        """Where renders go: the folder chosen in Render ▸ Output folder, else the default one."""
        return self.settings.render_folder or default_output_folder()

    def choose_output_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Render output folder", str(self.output_folder()))
        if folder:
            self.settings.render_folder = Path(folder)
            self._show_output_folder()

    def use_default_output_folder(self) -> None:
        """Render ▸ Use the default output folder: forget the folder chosen (``default_output_folder``)."""
        self.settings.render_folder = None
        self._show_output_folder()
        self.statusBar().showMessage(f"Renders go to {self.output_folder()}", 8000)

    def _show_output_folder(self) -> None:
        """The Render menu says where renders go; the default entry is there once a folder is chosen."""
        chosen = self.settings.render_folder is not None
        where = f"Renders go to {self.output_folder()}" + ("" if chosen else " (the default)")
        self.output_folder_action.setToolTip(where)
        self.output_folder_action.setStatusTip(where)
        self.default_folder_action.setEnabled(chosen)
        self.default_folder_action.setToolTip(f"Render to {default_output_folder()} again")

    def _ready_output_folder(self) -> Path | None:
        """The output folder, made when it is the default one and not there yet (a fresh install);
        None, with a message, when it cannot be used: a chosen folder that is gone (moved, on a
        drive not connected) is not made again where the editor may no longer look for it."""
        folder = self.output_folder()
        if self.settings.render_folder is None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                log.warning("cannot make the default output folder %s: %s", folder, error)
                self.show_message(
                    f"Cannot make the output folder {folder}: {error.strerror or error}. "
                    "Choose one with Render ▸ Output folder.",
                    "error",
                    RENDER,
                )
                return None
            return folder
        problem = output_folder_problem(folder)
        if problem:
            log.warning("render not queued: %s", problem)
            self.show_message(f"{problem} Choose another with Render ▸ Output folder.", "error", RENDER)
            return None
        return folder

    def set_codec(self, name: str | None) -> None:
        """Render with codec ``name`` (None: like each source); remembered for the next session."""
        self.codec_choice = name
        self.settings.codec = name
        self.inspector.show_codec(name, self._source_codec())

    def _source_codec(self) -> str | None:
        info = self.source.info if self.source is not None else None
        return codec_for_source(info.codec, info.bit_depth) if info is not None else None

    def output_codec(self) -> str:
        """The codec the next render writes: the one chosen, else the source's default (ProRes
        for ProRes and 10-bit sources, else the source's family)."""
        return self.codec_choice or self._source_codec() or "h264"

    def _output_naming(self, folder: Path) -> OutputNaming:
        """How a render of the current clip's In–Out into ``folder`` is named (``gui.output_names``)."""
        info = self.source.info
        start, end = self._render_range()
        speed = None if self.current_ramp() is not None else self.target_speed
        suffix_parts = (range_part(start, end, info.frame_count), speed_part(speed), self.backend)
        return OutputNaming(folder, output_stem(info.path), suffix_parts, codec_suffix(self.output_codec()))

    def _engine_outputs(self) -> list[Path]:
        """The outputs of the jobs the engine has queued or running, any session's."""
        return [Path(output) for output in self.link.state.job_outputs]

    def _taken_outputs(self) -> list[Path]:
        """Outputs a new render may not take besides files on disk and live writes: those of the
        renders in this window's queue and of the engine's jobs (no file yet for either)."""
        return [entry.order.output for entry in self.queue.entries.values()] + self._engine_outputs()

    def _output_path(self, folder: Path) -> Path:
        """A new name in ``folder`` for rendering the current clip's In–Out: never a file already
        there nor one being written, nor the output of a render queued here or in the engine."""
        return self._output_naming(folder).free_path(self._taken_outputs())

    def _rename_output(self, job_id: str) -> bool:
        """Give row ``job_id`` the next free output name: its own is taken (a file appeared there,
        or another session's render writes it). False when the row was not named here."""
        naming, entry = self.output_namings.get(job_id), self.queue.entries.get(job_id)
        if naming is None or entry is None:
            return False
        taken = entry.order.output
        self.queue.set_output(job_id, naming.free_path([*self._taken_outputs(), taken]))
        renamed = self.queue.entries[job_id].order.output
        log.info("render %s: %s is taken; rendering to %s", job_id, taken.name, renamed.name)
        self.statusBar().showMessage(f"{taken.name} is taken; rendering to {renamed.name}", 8000)
        return True

    def queue_render(self, folder: Path | None = None) -> str | None:
        """Queue a retime of In–Out at the target speed (or along the drawn ramp) with the chosen
        model into ``folder`` (default: the output folder); returns the job id, or None (with a
        message) when there is nothing to render or nowhere to write it."""
        if self.source is None:
            self.show_message("Open a clip before queuing a render.", "warning", RENDER)
            return None
        if self.source.info.frame_count < 2:
            self.show_message(STILL_RENDER_TEXT, "warning", RENDER)
            return None
        start, end = self._render_range()
        missing = self.source.info.missing_in(start, end)
        if missing:
            self.show_message(self._range_across_hole_text(start, end, missing), "warning", RENDER)
            return None
        folder = Path(folder) if folder else self._ready_output_folder()
        if folder is None:
            return None
        order = RenderOrder(
            source=self.source.info.path,
            output=self._output_path(folder),
            speed=self.target_speed,
            backend=self.backend,
            in_frame=start,
            out_frame=end,
            rate=self.source.info.rate,
            ramp=RenderOrder.ramp_keys(self.ramp_json()),
            codec=self.output_codec(),
        )
        job_id = new_job_id()
        self.output_namings[job_id] = self._output_naming(folder)
        self.queue.add(job_id, order)
        self._send_render(job_id)
        self.side_tabs.setCurrentWidget(self.queue)
        return job_id

    def _range_across_hole_text(self, start: int, end: int, missing: list[int]) -> str:
        """Why In–Out cannot be rendered from a sequence with a hole, and the ranges that can."""
        info = self.source.info
        names = [info.missing_names[info.missing_frames.index(n)] for n in missing]
        edges = [-1, *info.missing_frames, info.frame_count]
        pieces = [(max(a + 1, start), min(b - 1, end - 1)) for a, b in zip(edges, edges[1:], strict=False)]
        sides = [
            f"{self.clock.frame_text(first)}–{self.clock.frame_text(last)}"
            for first, last in pieces
            if first <= last
        ]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return (
            f"In to Out crosses the missing {shown}: set In and Out on one side of it "
            f"({' or '.join(sides)}), or fill it first with `chronoscope repair` and open the repaired clip."
        )

    def _send_render(self, job_id: str) -> None:
        """Give the engine the render of row ``job_id`` (its order, its id: an interrupted render
        given again resumes); with no engine, the row waits for one."""
        if job_id in self.waiting_renders:
            self.waiting_renders.remove(job_id)
        if self._engine_status == "connected":
            self.queue.set_queued(job_id)
            self.link.submit_render(self.queue.entries[job_id].order, job_id)
            return
        self.queue.set_waiting(job_id)
        self.waiting_renders.append(job_id)
        if self._engine_status != "starting":
            self.show_message(
                "No engine is running: the render waits for one. Use Engine ▸ Start engine "
                "(or Start engine in the status bar) to start one.",
                "info",
                RENDER,
            )

    def _send_waiting_renders(self) -> None:
        """An engine answers: send the renders that waited for one, in the order they were queued."""
        for job_id in list(self.waiting_renders):
            self._send_render(job_id)

    def retry_render(self, job_id: str) -> None:
        """Render a failed or cancelled row again: the same order, the same job id (an interrupted
        render resumes), under the next free name when its own is taken now."""
        if not self.queue.can_retry(job_id):
            return
        self.clear_messages(RENDER)
        self.output_renames.pop(job_id, None)
        if output_taken(self.queue.entries[job_id].order.output, self._engine_outputs()):
            self._rename_output(job_id)
        self._send_render(job_id)

    def cancel_render(self, job_id: str) -> None:
        """Cancel a render: one still waiting for an engine is simply not sent."""
        if job_id in self.waiting_renders:
            self.waiting_renders.remove(job_id)
            self.queue.finish(job_id, "cancelled", "cancelled before an engine took it")
            return
        self.link.cancel_job(job_id)

    def _job_finished(self, job_id: str, state: str, outcome) -> None:
        entry = self.queue.entries.get(job_id)
        if state == WAITING or (state == INTERRUPTED and entry is not None and not entry.started):
            # no engine took it, or the one that had it stopped before it began: it waits
            log.info("render %s waits for an engine: %s", job_id, outcome)
            self.queue.set_waiting(job_id)
            if job_id not in self.waiting_renders:
                self.waiting_renders.append(job_id)
            if self._engine_status == "connected":  # a new engine already answers
                QTimer.singleShot(1000, self._send_waiting_if_connected)
            return
        if state == OUTPUT_TAKEN:
            if self._output_taken_at_start(job_id):
                return
            state, outcome = "failed", self._output_taken_text(job_id, outcome)
        if state == INTERRUPTED:
            self.queue.finish(job_id, "failed", outcome, stopped=True)
            name = entry.order.output.name if entry is not None else "a render"
            self.show_message(
                f"The engine stopped while rendering {name}; Retry (in the render queue) renders it again.",
                "error",
                RENDER,
            )
            return
        self.queue.finish(job_id, state, outcome)
        if state == "unavailable":
            self.show_message(f"Render not available: {outcome}", "warning", RENDER)
        elif state == "failed":
            self.show_message(f"Render failed: {outcome}", "error", RENDER)
        elif state == "done":
            self.clear_messages(RENDER)
            self.statusBar().showMessage(f"Render finished: {outcome.output}", 8000)

    def _output_taken_at_start(self, job_id: str) -> bool:
        """The engine refused row ``job_id``'s output before rendering (a file is there, or another
        session's render writes it): send it again under the next free name; False when it had
        begun, or names kept being taken (``MAX_OUTPUT_RENAMES``)."""
        entry = self.queue.entries.get(job_id)
        renames = self.output_renames.get(job_id, 0)
        if entry is None or entry.started or renames >= MAX_OUTPUT_RENAMES or not self._rename_output(job_id):
            return False
        self.output_renames[job_id] = renames + 1
        self._send_render(job_id)
        return True

    def _output_taken_text(self, job_id: str, detail: str) -> str:
        entry = self.queue.entries.get(job_id)
        log.warning("render %s: output taken: %s", job_id, detail)
        if entry is None:
            return "its output file was taken by another render or program"
        output = entry.order.output
        if entry.started:
            return (
                f"{output.name} appeared in {output.parent} while it rendered (another program or "
                "render wrote it; that file is kept). Retry renders it again under a new name."
            )
        return (
            f"{output.name} and the names after it in {output.parent} are taken by other files or "
            "renders. Retry renders it again under a new name."
        )

    def _send_waiting_if_connected(self) -> None:
        if self._engine_status == "connected" and self.link.state.status == "connected":
            self._send_waiting_renders()

    # ------------------------------------------------------------------ drag and drop, closing

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_path(files[0])

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.waiting_renders and not self.close_provider(len(self.waiting_renders)):
            event.ignore()  # the renders waiting for an engine exist only in this window
            return
        self.stop()
        self.settings.set_layout("main_split", self.main_split.saveState())
        self.settings.set_layout("left_split", self.left_split.saveState())
        self.settings.set_layout("geometry", self.saveGeometry())
        self.settings.sync()
        self.link.close()
        if self.source is not None:
            self.source.close()
        super().closeEvent(event)


def _file_frame(segment) -> Fraction:
    """The frame of the clip's media file where the clip starts: OTIO counts source frames in the
    media's own time (a camera file's timecode, an image sequence's frame numbers), the file from 0."""
    from engine.render.plan import with_inferred_media_range
    from engine.timeline.rates import exact_frames

    located = with_inferred_media_range(segment)
    if located.available_range is None:
        return segment.source_start_frames
    return segment.source_start_frames - exact_frames(located.available_range.start_time, segment.source_rate)
