"""Reconstruction-based and shallow-learning SR that is not a network: multi-frame (burst)
reconstruction and the sparse-coding solver."""
