"""glibc's malloc arenas in Dockyard's long-running processes.

glibc hands a thread that finds the malloc arena busy an arena of its own, up to eight
per core, and each arena keeps memory freed into it for its own later use. The server
runs its blocking work on a pool of threads (anyio's, up to 40): under load each of
them allocates (request bodies, SQLite's page cache, hashes) while the others do, and
the process ends up holding a dozen arenas' worth of freed memory. Python objects come
from Python's own allocator under the GIL, so the threads seldom contend for malloc
and two arenas cost nothing measurable. Measured with ``make bench``'s registry
workload: the server settles about 10 MB lower and peaks about as much lower.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the most arenas (``<malloc.h>``)."""
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> None:
    """At most ``arenas`` malloc arenas in this process and in the processes it starts
    (uvicorn's server processes with ``--workers``, the job workers: glibc reads
    ``MALLOC_ARENA_MAX`` when a process starts), unless ``MALLOC_ARENA_MAX`` is set
    already (glibc has read it: the operator's choice stands). Call before the process
    starts threads: arenas made already stay."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt to call: not glibc
        return
    mallopt(M_ARENA_MAX, arenas)
