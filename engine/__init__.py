"""Chronoscope engine: speed detection, slow-motion retiming and fill frames for video editors."""

__version__ = "0.1.0"
