"""How the C library's allocator serves a Dockyard process: :func:`tune` sets it up once,
at the start of the server's and the job worker's processes, and :func:`start_trimming`
hands a server's freed memory back now and then (glibc only; elsewhere both do nothing).

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
  top) to twice that. A login that misses the verification cache runs argon2 in a work area
  of several MiB (:mod:`dockyard.iam.passwords`): after the first one, every later work area
  came from a thread's heap and stayed there, one work area per arena. Setting both thresholds
  fixes them, which keeps glibc from moving them.
- **Memory freed in the middle of a heap.** glibc returns a heap's free memory to the
  system only from its top. What a burst of requests frees below live allocations (SQLite
  connections' caches, request buffers) stays resident until reused: 4-10 MB of the
  server's heap during the benchmark's registry phases (``mallinfo2``). ``malloc_trim``
  hands those pages back. With it every 5 s and 16 server threads
  (``Settings.threads``) instead of 40, the server's peak over those phases was 113-116
  MB in two runs, against 119-120.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

MMAP_THRESHOLD = 2 * 1024 * 1024
"""Allocations from this size on get a mapping of their own, returned when freed: the
work areas of argon2 among them, not the server's 1 MiB I/O buffers."""
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
"""Free memory at the top of a heap beyond this goes back to the system (what glibc's
own rule makes of the threshold above)."""
ARENAS_PER_CORE = 2
TRIM_INTERVAL = 5.0
"""Seconds between two :func:`start_trimming` hand-backs."""

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


def start_trimming(interval: float = TRIM_INTERVAL) -> bool:
    """Hand the free memory of every heap back to the system (``malloc_trim``) every
    ``interval`` seconds, on a daemon thread, for the rest of the process's life. False,
    and nothing started, where the C library is not glibc."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def run() -> None:
        while True:
            time.sleep(interval)
            trim(0)

    threading.Thread(target=run, name="malloc-trim", daemon=True).start()
    return True
