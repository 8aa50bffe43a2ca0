"""Resident memory of this process, now and at its peak over a block: the benchmarks' one memory probe.

tracemalloc sees only Python and NumPy allocations; torch, faiss, onnxruntime and OpenVINO allocate
outside it, so the benchmarks measure resident memory (RSS) instead.
"""

from __future__ import annotations

import os
import threading

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE_MB


class PeakRss:
    """Largest resident memory seen (sampled every 2 ms) while the block runs, in MiB (`start`, `peak`)."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())
