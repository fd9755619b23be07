"""File name endings that mean video, in one place, importable without PyAV (the procedural
renders of training run where it is missing)."""

from __future__ import annotations

VIDEO_FILE_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".mpg", ".mpeg", ".mts", ".m2ts", ".ts", ".webm", ".mxf", ".3gp"}
)
"""Taken as video when a folder is searched for clips (mining, training)."""
