"""The streamer's output going straight into an image file: finished pixels are held only
until their rows are complete, then encoded, so a huge output never exists whole in memory.

Tiles finish in any order on several workers, and a file takes rows top to bottom, so the
sink keeps the rows that are still being filled in blocks of anonymous memory (pages count
only once written, and go back to the system the moment the block is encoded) and hands
each run of complete rows at the top to the writer, on whichever worker completed them.
"""

from __future__ import annotations

import mmap
import threading

import numpy as np
import torch

from superres.image.rows import RowWriter

_BLOCK_BYTES = 8 * 2**20  # rows are held in blocks of about this many bytes


class RowSink:
    """A `Sink` (see `superres.inference.streaming`) that encodes rows into a RowWriter as
    soon as every pixel above them is finished. Safe to write from several threads."""

    def __init__(self, writer: RowWriter) -> None:
        self.writer = writer
        self.shape = (1, writer.height, writer.width, writer.channels)
        self.dtype = torch.uint8
        self._row_bytes = writer.width * writer.channels
        self._block_rows = max(1, _BLOCK_BYTES // self._row_bytes)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._blocks: dict[int, np.ndarray] = {}
        self._filled = np.zeros(self.writer.height, np.int64)  # finished samples per row
        self._next = 0  # the first row not yet encoded
        self._flushing = False

    def restart(self) -> None:
        """Forget everything written: the image is about to be written anew."""
        with self._lock:
            self._reset()
            self.writer.restart()

    def write(self, top: int, left: int, pixels: torch.Tensor) -> None:
        region = pixels[0].numpy().reshape(pixels.shape[1], -1)  # rows x (w * channels)
        rows, length = region.shape
        start = left * self.writer.channels
        with self._lock:
            targets = [(row, self._block(row)) for row in self._block_starts(top, rows)]
        for row, block in targets:  # rows being filled are never encoded or freed meanwhile
            first, last = max(row, top), min(row + self._block_rows, top + rows)
            block[first - row : last - row, start : start + length] = region[first - top :
                                                                             last - top]
        with self._lock:
            self._filled[top : top + rows] += length
            if self._flushing:  # the worker encoding will take these rows too
                return
            self._flushing = True
        self._flush()

    def _block_starts(self, top: int, rows: int) -> range:
        size = self._block_rows
        return range(top - top % size, top + rows, size)

    def _block(self, row: int) -> np.ndarray:
        """The block holding rows from `row`, made on first use."""
        block = self._blocks.get(row)
        if block is None:
            rows = min(self._block_rows, self.writer.height - row)
            memory = mmap.mmap(-1, rows * self._row_bytes)
            block = self._blocks[row] = np.frombuffer(memory, np.uint8).reshape(rows, -1)
        return block

    def _flush(self) -> None:
        """Encode the complete rows at the top, in order, until there are none."""
        try:
            while True:
                with self._lock:
                    start = self._next
                    incomplete = np.flatnonzero(self._filled[start:] != self._row_bytes)
                    end = start + int(incomplete[0]) if len(incomplete) else len(self._filled)
                    if end == start:
                        self._flushing = False
                        return
                for row in self._block_starts(start, end - start):
                    block = self._blocks[row]
                    self.writer.write(block[max(start - row, 0) : end - row])
                with self._lock:
                    self._next = end
                    height = self.writer.height
                    for row in [r for r in self._blocks
                                if min(r + self._block_rows, height) <= end]:
                        del self._blocks[row]  # its memory is unmapped with it
        except BaseException:
            with self._lock:
                self._flushing = False
            raise
