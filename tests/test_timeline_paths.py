"""Media locations: plain, file URL, Windows and UNC paths, and prefix remapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import UnsupportedOptionError
from engine.timeline import PathMap, decode_target_url, is_windows_path, media_location


@pytest.mark.parametrize(
    ("target_url", "decoded"),
    [
        ("/Volumes/Footage/a.mov", "/Volumes/Footage/a.mov"),
        ("file:///Volumes/Footage/Day%201/a%20b.mov", "/Volumes/Footage/Day 1/a b.mov"),
        ("file://localhost/Volumes/Footage/a.mov", "/Volumes/Footage/a.mov"),
        ("file:///C:/Footage/a%20b.mov", "C:/Footage/a b.mov"),
        ("file://server/share/x%23y.mov", "\\\\server\\share\\x#y.mov"),
        ("C:\\Footage\\a.mov", "C:\\Footage\\a.mov"),
        ("\\\\server\\share\\x.mov", "\\\\server\\share\\x.mov"),
        ("media/rel%20ative.mov", "media/rel%20ative.mov"),
    ],
)
def test_decode_target_url(target_url, decoded):
    assert decode_target_url(target_url) == decoded


def test_non_file_urls_are_refused():
    with pytest.raises(UnsupportedOptionError, match="https: scheme; plain paths and file:// URLs work"):
        decode_target_url("https://example.com/a.mov")


def test_windows_paths_are_recognised():
    assert is_windows_path("C:\\x") and is_windows_path("d:/x") and is_windows_path("\\\\srv\\s")
    assert not is_windows_path("/Volumes/C:/x") and not is_windows_path("relative/x")


def test_windows_path_is_not_local_here_without_a_map():
    location = media_location("C:\\Footage\\Day 2\\B001.mov", windows=False)
    assert location.local_path is None
    assert "C:\\Footage=/mnt/footage" in location.reason
    assert location.target_url == "C:\\Footage\\Day 2\\B001.mov"


def test_windows_path_on_windows_is_local():
    location = media_location("file:///C:/Footage/a%20b.mov", windows=True)
    assert location.local_path is not None
    assert str(location.local_path).replace("\\", "/").endswith("C:/Footage/a b.mov")


def test_path_map_moves_projects_between_machines():
    path_map = PathMap.from_strings(["C:\\Footage=/mnt/footage", "/Volumes/Footage=/mnt/footage",
                                     "/Volumes/Footage/Graphics=/mnt/gfx"])
    assert path_map.apply("c:\\footage\\Day 2\\B001.mov") == "/mnt/footage/Day 2/B001.mov"
    assert path_map.apply("/Volumes/Footage/Graphics/x.mov") == "/mnt/gfx/x.mov", "longest prefix wins"
    assert path_map.apply("/Volumes/FootageOld/x.mov") == "/Volumes/FootageOld/x.mov", "whole components only"
    assert path_map.apply("/volumes/footage/x.mov") == "/volumes/footage/x.mov", "POSIX prefixes keep case"
    to_windows = PathMap.from_pairs({"/Volumes/Footage": "\\\\nas\\footage"})
    assert to_windows.apply("/Volumes/Footage/Day 1/a.mov") == "\\\\nas\\footage\\Day 1\\a.mov"
    located = media_location("C:\\Footage\\Day 2\\B001.mov", path_map=path_map, windows=False)
    assert located.local_path == Path("/mnt/footage/Day 2/B001.mov")
    assert located.decoded == "C:\\Footage\\Day 2\\B001.mov"


def test_path_map_entries_are_checked():
    with pytest.raises(UnsupportedOptionError, match="write it as OLD=NEW"):
        PathMap.from_strings(["C:\\Footage"])
    with pytest.raises(UnsupportedOptionError, match="empty on one side"):
        PathMap.from_pairs({"": "/mnt"})


def test_relative_location_uses_base_dir(tmp_path):
    location = media_location("media/a.mov", base_dir=tmp_path, windows=False)
    assert location.local_path == tmp_path / "media/a.mov"
