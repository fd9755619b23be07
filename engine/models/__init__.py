"""Model files for the engine: manifests, the registry of installed models, ONNX Runtime sessions.

``convert_rife`` and ``tuned`` (which need torch) make the files: the pinned RIFE models from
their wheels, and the tuned models that ship as weight deltas in ``shipped/``. The rest runs on
ONNX Runtime only.
"""
