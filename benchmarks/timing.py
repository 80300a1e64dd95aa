"""Timing shared by the speed benchmarks: interleaved rounds, best time of each."""

from __future__ import annotations

from collections.abc import Callable


def best_times(runs: dict[str, Callable[[], object]], rounds: int, clock: Callable[[], float]
               ) -> dict[str, float]:
    """Best time of each run over `rounds` interleaved rounds, after one warm-up each: on a
    machine with other work, the rounds see the same load, and the best is the least
    disturbed."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            start = clock()
            run()
            best[name] = min(best[name], clock() - start)
    return best
