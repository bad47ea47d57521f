"""Worker memory: large buffers go back to the system as soon as they are freed.

glibc's malloc serves a request of 128 KiB or more with its own mmap, and returns it on free;
but after the first such free it raises that threshold (up to 32 MiB) to the size freed, so
later 1 MiB buffers (a post's row, its text, its JSON, its chunk) come from the heap, where four
listings streaming at once interleave them and the heap grows in holes it cannot give back.
Measured (bench.stress_listing, one gevent worker, 4 clients listing 1 GiB of 1 MiB posts at
once, 2026-11-28): the worker grew +82 MiB with the dynamic threshold, +15 MiB with it fixed at
128 KiB, and its resting RSS fell from 116 to 100 MiB. The cost: each large buffer is a fresh
mapping, so those listings streamed at 205 instead of 362 MiB/s per worker (still more than a
network link gives one client).

An operator's own MALLOC_MMAP_THRESHOLD_ (glibc's environment tunable) is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

# mallopt(3): M_MMAP_THRESHOLD; setting it also turns the dynamic adjustment off.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024
ENVIRONMENT_TUNABLE = "MALLOC_MMAP_THRESHOLD_"


def fix_mmap_threshold() -> bool:
    """Keep buffers of MMAP_THRESHOLD_BYTES or more out of the heap; False where that cannot be set."""
    if ENVIRONMENT_TUNABLE in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1:
        log.warning("mallopt(M_MMAP_THRESHOLD) refused; large buffers stay on the heap")
        return False
    return True
