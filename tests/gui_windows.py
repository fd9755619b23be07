"""The preview app's window for tests: ``offline_window`` (no engine) and ``connected_window`` (a
running engine, connected): ``from gui_windows import offline_window``."""

from __future__ import annotations


def offline_window(qtbot, qapp):
    """The main window, shown at 1280x800, with no engine (none runs in a test's isolated home and
    none is started); closing it at the end of a test never asks about waiting renders. The
    caller closes it."""
    from gui.engine_link import EngineLink
    from gui.main_window import MainWindow
    from gui.settings import AppSettings
    from gui.style import apply_dark_palette

    apply_dark_palette(qapp)
    window = MainWindow(EngineLink(start_engine=False), AppSettings())
    window.close_provider = lambda count: True
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    return window


def connected_window(qtbot, qapp, *, size: tuple[int, int] = (1280, 800), wait_ms: int = 60_000):
    """The main window, shown at ``size``, connected to the engine already running in the test's
    home (waits until it is); closing it never asks about waiting renders. The caller closes it."""
    from gui.engine_link import EngineLink
    from gui.main_window import MainWindow
    from gui.settings import AppSettings
    from gui.style import apply_dark_palette

    apply_dark_palette(qapp)
    link = EngineLink()
    window = MainWindow(link, AppSettings())
    window.close_provider = lambda count: True
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    link.connect_engine()
    qtbot.waitUntil(lambda: window.engine_status == "connected", timeout=wait_ms)
    return window
