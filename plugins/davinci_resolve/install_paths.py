"""Where DaVinci Resolve looks for user scripts, per OS, and the entry scripts written there.

Resolve lists scripts under ``Fusion/Scripts/Utility`` on every page and those under
``Fusion/Scripts/Edit`` on the Edit page, in Workspace > Scripts. Per-user roots:

    Linux    ~/.local/share/DaVinciResolve/Fusion/Scripts
    macOS    ~/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts
    Windows  %APPDATA%\\Blackmagic Design\\DaVinci Resolve\\Support\\Fusion\\Scripts

Resolve makes every file of those folders a menu entry, so each of the three scripts is a file of
its own, in Python (Studio) and in Lua (the free edition). Resolve gives a script no import path,
so each entry names the shared module (``chronoscope_resolve.py`` / ``.lua``) by its absolute
path. The entries are written at install time from one template per language
(``entry.py.template``, ``entry.lua.template``) and the list ``ENTRIES``; the shared modules live
outside Resolve's menu folders. Standard library only, so that the installer can use it before
anything else is installed::

    texts = entry_texts(modules_dir)          # {file name: text}, modules_dir absolute
    for name, text in texts.items(): write(script_folder("Utility") / name, text)
    for name in SHARED_MODULES.values(): copy(PLUGIN_DIR / name, modules_dir / name)
    # then: chronoscope bridge --install-config   (writes resolve-bridge.json in the config folder)

Without the installer (from a checkout)::

    python3 plugins/davinci_resolve/install_paths.py install [--subfolder Edit] [--modules-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import string
import sys
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

PLUGIN_DIR = Path(__file__).resolve().parent
SUBFOLDERS = ("Utility", "Edit")
DEFAULT_SUBFOLDER = "Utility"
LANGUAGES = (".py", ".lua")
TEMPLATES = {".py": "entry.py.template", ".lua": "entry.lua.template"}
SHARED_MODULES = {".py": "chronoscope_resolve.py", ".lua": "chronoscope_resolve.lua"}
BRIDGE_CONFIG_NAME = "resolve-bridge.json"
SUMMARY_WIDTH = 96


@dataclass(frozen=True)
class Entry:
    """One Workspace > Scripts entry: its menu title (the file name), the shared module's action
    (``chronoscope_resolve.run(action, ...)``) and one paragraph for the file's docstring."""

    title: str
    action: str
    summary: str

    def file_name(self, language: str) -> str:
        return self.title + language


ENTRIES = (
    Entry(
        "Chronoscope - Detect Speed",
        "detect",
        "Exports the current timeline as OTIO, has Chronoscope detect the speed of every clip, and "
        "marks each detected segment on the timeline (colour by class; re-running replaces only "
        "Chronoscope's own markers).",
    ),
    Entry(
        "Chronoscope - Render Slow Motion",
        "render",
        "Renders the clips slower than 100 % (and those flagged for Chronoscope) through the engine, "
        'imports the media into a "Chronoscope" bin and builds a new timeline "<name> (Chronoscope)"; '
        "the original timeline is never changed.",
    ),
    Entry(
        "Chronoscope - Open in Preview",
        "preview",
        "Exports the current timeline and opens it in the Chronoscope preview app.",
    ),
)
PYTHON_SCRIPTS = tuple(entry.file_name(".py") for entry in ENTRIES)
LUA_SCRIPTS = tuple(entry.file_name(".lua") for entry in ENTRIES)
ENTRY_FILES = PYTHON_SCRIPTS + LUA_SCRIPTS


class UnknownPlatformError(ValueError):
    """The OS is not one Resolve runs on; the message lists those it does."""


def scripts_root(
    platform: str | None = None, env: Mapping[str, str] | None = None, home: Path | None = None
) -> Path:
    """The per-user ``Fusion/Scripts`` folder of Resolve on ``platform`` (default: this one)."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = Path(home) if home is not None else Path.home()
    if platform.startswith("linux"):
        return home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts"
    if platform == "darwin":
        return (
            home
            / "Library"
            / "Application Support"
            / "Blackmagic Design"
            / "DaVinci Resolve"
            / "Fusion"
            / "Scripts"
        )
    if platform == "win32":
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
        return base / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    raise UnknownPlatformError(
        f"DaVinci Resolve does not run on {platform!r}; it runs on: linux, darwin, win32"
    )


def script_folder(
    subfolder: str = DEFAULT_SUBFOLDER,
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Path:
    """``Fusion/Scripts/<subfolder>``: ``Utility`` (every page) or ``Edit`` (the Edit page)."""
    if subfolder not in SUBFOLDERS:
        raise ValueError(
            f"script subfolder {subfolder!r} is not one Resolve lists; use one of: {', '.join(SUBFOLDERS)}"
        )
    return scripts_root(platform, env, home) / subfolder


def script_folders(
    platform: str | None = None, env: Mapping[str, str] | None = None, home: Path | None = None
) -> dict[str, Path]:
    """Both folders Resolve lists scripts from, by subfolder name."""
    return {name: script_folder(name, platform, env, home) for name in SUBFOLDERS}


# ------------------------------------------------------------------------------ entry scripts


def lua_string(text: str) -> str:
    """``text`` as a double-quoted Lua string literal that Lua 5.1 (Resolve's LuaJIT) to 5.4 read
    back exactly: backslash and quote escaped, control characters as three-digit ``\\ddd``, the
    rest as it is (the entry files are UTF-8)."""
    parts = []
    for char in text:
        if char in '"\\':
            parts.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            parts.append(f"\\{ord(char):03d}")
        else:
            parts.append(char)
    return '"' + "".join(parts) + '"'


def _literal(text: str, language: str) -> str:
    return repr(text) if language == ".py" else lua_string(text)


def _summary(entry: Entry, language: str) -> str:
    if '"""' in entry.summary or "\\" in entry.summary:
        raise ValueError(f"the summary of {entry.title!r} may not hold a backslash or three quotes")
    prefix = "" if language == ".py" else "-- "
    return textwrap.fill(entry.summary, SUMMARY_WIDTH, initial_indent=prefix, subsequent_indent=prefix)


def shared_module_path(modules_dir: PurePath | str, language: str) -> PurePath:
    """Where the entry of ``language`` finds its shared module; ``modules_dir`` must be absolute."""
    folder = modules_dir if isinstance(modules_dir, PurePath) else Path(modules_dir)
    if not folder.is_absolute():
        raise ValueError(
            f"the shared modules' folder {str(folder)!r} is relative; Resolve runs scripts from its "
            "own working folder, so give an absolute folder"
        )
    return folder / SHARED_MODULES[language]


def entry_text(entry: Entry, language: str, modules_dir: PurePath | str) -> str:
    """The entry script of ``entry`` in ``language`` (``.py`` or ``.lua``), naming the shared
    module in ``modules_dir`` by its absolute path."""
    if language not in TEMPLATES:
        raise ValueError(f"entry language {language!r} is not known; use one of: {', '.join(LANGUAGES)}")
    template = string.Template((PLUGIN_DIR / TEMPLATES[language]).read_text(encoding="utf-8"))
    return template.substitute(
        title=entry.title,
        title_literal=_literal(entry.title, language),
        summary=_summary(entry, language),
        shared_module=_literal(str(shared_module_path(modules_dir, language)), language),
        action=_literal(entry.action, language),
    )


def entry_texts(modules_dir: PurePath | str, languages: Sequence[str] = LANGUAGES) -> dict[str, str]:
    """Every entry script, by file name, for the shared modules in ``modules_dir``."""
    return {
        entry.file_name(language): entry_text(entry, language, modules_dir)
        for language in languages
        for entry in ENTRIES
    }


def source_files() -> list[Path]:
    """The files the install reads from this folder: the shared modules and the templates."""
    return [PLUGIN_DIR / name for name in (*SHARED_MODULES.values(), *TEMPLATES.values())]


def _write_atomic(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.partial-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def install(scripts_dir: Path, modules_dir: Path | None = None) -> list[Path]:
    """Write the entry scripts into ``scripts_dir``; with ``modules_dir``, copy the shared modules
    there first, otherwise the entries use this folder's own. Returns the files written."""
    scripts_dir = Path(scripts_dir).absolute()
    if modules_dir is None:
        modules_dir = PLUGIN_DIR
    else:
        modules_dir = Path(modules_dir).absolute()
    written = []
    if modules_dir != PLUGIN_DIR:
        modules_dir.mkdir(parents=True, exist_ok=True)
        for name in SHARED_MODULES.values():
            _write_atomic(modules_dir / name, (PLUGIN_DIR / name).read_bytes())
            written.append(modules_dir / name)
    scripts_dir.mkdir(parents=True, exist_ok=True)
    for name, text in entry_texts(modules_dir).items():
        _write_atomic(scripts_dir / name, text.encode("utf-8"))
        written.append(scripts_dir / name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="install_paths.py",
        description="Resolve's script folders, and installing the Chronoscope scripts there without "
        "the installer (installer/install.py does this, and more, for editors).",
    )
    commands = parser.add_subparsers(dest="command", metavar="{folders,install}")
    commands.add_parser("folders", help="print Resolve's per-user script folders (the default)")
    installing = commands.add_parser(
        "install",
        help="write the six entry scripts into a Resolve script folder",
        description="Write the three entry scripts, in Python and in Lua, into Resolve's script folder. "
        "They run the shared modules of this checkout unless --modules-dir says where to copy them. "
        "Then run `chronoscope bridge --install-config` in Chronoscope's environment.",
    )
    installing.add_argument(
        "--subfolder",
        choices=SUBFOLDERS,
        default=DEFAULT_SUBFOLDER,
        help="Utility: listed on every page (default); Edit: on the Edit page only",
    )
    installing.add_argument(
        "--scripts-dir",
        type=Path,
        metavar="DIR",
        help="write the entries here instead of Resolve's per-user folder",
    )
    installing.add_argument(
        "--modules-dir",
        type=Path,
        metavar="DIR",
        help="copy chronoscope_resolve.py and .lua here and point the entries at them "
        f"(default: leave them in {PLUGIN_DIR})",
    )
    args = parser.parse_args(argv)
    if args.command == "install":
        try:
            target = args.scripts_dir or script_folder(args.subfolder)
            written = install(target, args.modules_dir)
        except (OSError, ValueError) as error:
            print(f"install_paths.py: error: {error}", file=sys.stderr)
            return 2
        for path in written:
            print(path)
        return 0
    for name, folder in script_folders().items():
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
