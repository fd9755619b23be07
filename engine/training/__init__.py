"""Offline work that needs torch: network definitions for conversion (and, later, training).

Nothing under ``engine/`` outside this package and ``engine/models/convert_rife.py`` imports torch;
the serving path runs the ONNX files these networks are exported to.
"""
