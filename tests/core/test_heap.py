"""release_freed_heap gives freed heap pages back to the OS, and the read-ahead pipe calls it once per window."""

import os
import platform

import pytest

from spacy_seqlab.core import heap

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's"
)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@glibc
def test_freed_holes_in_the_heap_go_back_to_the_os():
    # 1 KB buffers come from malloc's heap (not mmap); keeping every 100th leaves holes that free() keeps.
    blocks = [bytearray(1024) for _ in range(200_000)]
    kept = blocks[::100]
    del blocks
    before = _rss_mb()
    assert heap.release_freed_heap() is True
    after = _rss_mb()
    assert before - after > 100, (before, after)
    assert len(kept) == 2000


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    assert heap.release_freed_heap() is False
