"""How the C library's allocator serves a Dockyard process: :func:`tune` sets it up once,
at the start of the server's and the job worker's processes (glibc only; elsewhere it
does nothing).

Measured with ``make bench``'s registry workload, glibc's defaults cost the server about
a third of its resident memory, for no speed:

- **Arenas.** glibc gives threads up to eight heaps ("arenas") per core, and memory freed
  in one stays with it. The server answers requests on up to 40 threads, which spread
  over sixteen arenas on two cores. Two per core left the server 15-20 MB smaller after the
  workload, every throughput figure unchanged. One per core saved no more, and an
  earlier measurement (``MALLOC_ARENA_MAX=2`` on two cores) found it slowed blob pushes
  and pulls.
- **Large allocations.** An allocation at or above glibc's mapping threshold gets a
  mapping of its own, unmapped when freed. But each such free raises that threshold (up
  to 32 MiB) to the size freed, and the trim threshold (free memory a heap keeps at its
  top) to twice that. A login that misses the verification cache runs argon2 in a 19 MiB
  work area (:mod:`dockyard.iam.passwords`): after the first one, every later work area
  came from a thread's heap and stayed there, 19 MiB per arena. Setting both thresholds
  fixes them, which keeps glibc from moving them.
"""

from __future__ import annotations

import ctypes
import os

MMAP_THRESHOLD = 2 * 1024 * 1024
"""Allocations from this size on get a mapping of their own, returned when freed: the
work areas of argon2 among them, not the server's 1 MiB I/O buffers."""
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
"""Free memory at the top of a heap beyond this goes back to the system (what glibc's
own rule makes of the threshold above)."""
ARENAS_PER_CORE = 2

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def arenas() -> int:
    """The most arenas :func:`tune` lets glibc make: two per core this process may use."""
    return ARENAS_PER_CORE * max(1, len(os.sched_getaffinity(0)))


def tune() -> bool:
    """Cap glibc's arenas and fix its thresholds for large allocations (see the module's
    text). Call it before the process starts its threads: a thread keeps the arena it
    was given. False, and nothing done, where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_ARENA_MAX, arenas()),
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
    )
    return all(mallopt(option, value) == 1 for option, value in settings)
