"""Chronoscope - Render Slow Motion (DaVinci Resolve, Workspace > Scripts).

Renders the clips slower than 100 % (and those flagged for Chronoscope) through the engine,
imports the media into a "Chronoscope" bin and builds a new timeline "<name> (Chronoscope)";
the original timeline is never changed.

Standard library only; the work is in chronoscope_resolve.py, installed beside this file.
"""

import os
import sys


def _shared_module():
    folders = []
    if "__file__" in globals():
        folders.append(os.path.dirname(os.path.abspath(__file__)))
    if sys.argv and sys.argv[0]:
        folders.append(os.path.dirname(os.path.abspath(sys.argv[0])))
    home = os.path.expanduser("~")
    roots = [
        os.path.join(home, ".local", "share", "DaVinciResolve", "Fusion", "Scripts"),
        os.path.join(
            home,
            "Library",
            "Application Support",
            "Blackmagic Design",
            "DaVinci Resolve",
            "Fusion",
            "Scripts",
        ),
        os.path.join(
            os.environ.get("APPDATA", ""),
            "Blackmagic Design",
            "DaVinci Resolve",
            "Support",
            "Fusion",
            "Scripts",
        ),
    ]
    folders += [os.path.join(root, sub) for root in roots for sub in ("Utility", "Edit")]
    for folder in folders:
        if os.path.isfile(os.path.join(folder, "chronoscope_resolve.py")):
            if folder not in sys.path:
                sys.path.insert(0, folder)
            import chronoscope_resolve

            return chronoscope_resolve
    print(
        "Chronoscope: chronoscope_resolve.py is missing beside this script; re-run the Chronoscope installer"
    )
    return None


_module = _shared_module()
if _module is not None:
    _module.run("render", globals())
