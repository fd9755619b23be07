"""Where a Resolve render goes: one stable folder per project and timeline, so that a second run
renders into the same folder, finds its earlier renders by their content hash and resumes.

    <render folder>/<project>/<timeline>/        render_dir from the config, else
    <Chronoscope data>/resolve-renders/          (``render_root``)

The scripts name the two folders (``folder_name``: the Python and the Lua script do the same) and
send them as ``output_dir``, under the config's ``render_dir`` or, without one, as a relative
path, which the bridge puts under ``render_root``. Without any ``output_dir`` (a request made by
hand) the folder is ``render_root() / folder_name(timeline)``.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import UnsupportedOptionError
from engine.places import places

RENDER_ROOT_NAME = "resolve-renders"
FOLDER_NAME_MAX_BYTES = 80
"""Of a project's or timeline's name in a folder name, in UTF-8."""
_NOT_KEPT = re.compile(r"[^A-Za-z0-9_\-\u0080-\U0010ffff]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10)}
"""Names Windows keeps for devices, whatever follows them."""


def folder_name(name: str, fallback: str) -> str:
    """``name`` as a folder name on every file system, readable: letters and digits of ASCII,
    ``-``, ``_`` and every character beyond ASCII (accents, other scripts) are kept; each run of
    other characters (spaces, dots, separators, symbols) becomes one ``_``; no ``_`` at either end;
    at most ``FOLDER_NAME_MAX_BYTES`` bytes of UTF-8, cut between characters; a name Windows keeps
    for a device gets a ``_``; ``fallback`` when nothing is left. ``Cut 1 / été`` gives
    ``Cut_1_été``. The Resolve scripts (Python and Lua) apply the same rule byte for byte."""
    kept = _NOT_KEPT.sub("_", name).strip("_")
    kept = kept.encode("utf-8", "surrogatepass")[:FOLDER_NAME_MAX_BYTES].decode("utf-8", "ignore").rstrip("_")
    if not kept:
        return fallback
    return kept + "_" if kept.upper() in _RESERVED else kept


def render_root() -> Path:
    """``<Chronoscope data>/resolve-renders``: where renders go without a ``render_dir``."""
    return places().data_dir / RENDER_ROOT_NAME


def render_folder(output_dir: Path | None, timeline_name: str) -> Path:
    """The absolute folder a render goes to: ``output_dir`` as it is when absolute, under
    ``render_root`` when relative (``<project>/<timeline>``, as the scripts send it), and
    ``render_root() / folder_name(timeline_name)`` when none is given."""
    if output_dir is None:
        return render_root() / folder_name(timeline_name, "timeline")
    output_dir = Path(output_dir).expanduser()
    if output_dir.is_absolute():
        return output_dir
    if ".." in output_dir.parts:
        raise UnsupportedOptionError(
            f"render output_dir {str(output_dir)!r} is relative and climbs out with '..'; a relative "
            f"folder goes under {render_root()}: give one without '..', or an absolute folder"
        )
    return render_root() / output_dir
