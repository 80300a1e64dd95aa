"""Network designs by family: residual, recursive, dense and residual-dense, channel
attention, RRDB and back-projection blocks."""
