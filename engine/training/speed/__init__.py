"""Training the learned playback-speed estimator (torch; offline only).

``data`` builds a small cache of low-resolution training windows from the real clips and from
procedural high-rate renders (numpy only); ``net`` defines the network; ``train`` runs the
self-supervised recipe and exports ONNX with its manifest to ``engine/speed/model``.
"""
