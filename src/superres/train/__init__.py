"""Training: typed recipes, the training loop, checkpoints that resume bit-exactly."""
