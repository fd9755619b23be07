"""Model files for the engine: manifests, the registry of installed models, ONNX Runtime sessions.

``convert_rife`` (which needs torch) makes the files; the rest runs on ONNX Runtime only.
"""
