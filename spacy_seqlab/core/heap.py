"""Hand freed heap memory back to the operating system between prediction batches.

glibc's allocator keeps memory that torch and oneDNN free (activations, scratch buffers of many
sizes) in its arenas for reuse; over a long stream of documents of varying lengths the arenas
fragment and a process's RSS creeps up although nothing is alive. ``malloc_trim`` returns the free
pages. Other C libraries (musl, macOS, Windows) have no such call and need none of this, so there
it does nothing.
"""

import ctypes
import ctypes.util
import platform
from functools import lru_cache
from typing import Any, Optional


@lru_cache(maxsize=1)
def _glibc() -> Optional[Any]:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_freed_heap() -> bool:
    """Return free heap pages to the OS (glibc ``malloc_trim(0)``); False where there is no such call.

    It costs milliseconds on a fragmented heap of hundreds of MB, so call it per batch of documents,
    not per document.
    """
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
