"""Pixels in and out: reading and writing images, BT.601 colour as MATLAB computes it,
MATLAB's imresize, degradations that make LR from HR, and the built-in sample."""
