"""Temporal super-resolution training: fine-tune our RIFE on genuine high-rate footage.

Self-supervised, as in the paper's last step: from a clip captured at a high rate, keep frames
i and i + k, predict the frames between them at t = j / k, and compare with the real ones.

- ``data``: the dataset folder (rows of ``manifest.jsonl`` from ``chronoscope mine --extract``
  that point at clips, or every video file and image sequence under the folder), procedural
  renders from engine.scenes, the split by source, and the sampling of (frame0, frame1, truth, t).
- ``losses``: L1 plus an L1 over a Laplacian pyramid, as the RIFE authors trained with.
- ``evaluate``: PSNR (and any other metric given) on held-out renders, real high-speed image
  sequences, Middlebury triplets and the dataset's held-out sources.
- ``train``: the loop (AdamW, random crops, mixed precision on a GPU, checkpoints, resume) and
  ``train_tsr``, which measures before and after in the same run and exports the result.
- ``export``: ONNX plus manifest into the models folder, and the model card beside it.

Everything here imports torch; the command line checks for it before importing this package's
modules (``chronoscope train tsr`` names ``pip install 'chronoscope[train]'`` when it is missing).
"""
