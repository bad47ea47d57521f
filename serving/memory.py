"""Worker memory: large buffers go back to the system as soon as they are freed; the loaded app is not collected.

glibc's malloc serves a request of 128 KiB or more with its own mmap, and returns it on free;
but after the first such free it raises that threshold (up to 32 MiB) to the size freed, so
later 1 MiB buffers (a post's row, its text, its JSON, its chunk) come from the heap, where four
listings streaming at once interleave them and the heap grows in holes it cannot give back.
Kept because the memory goal needs it: a worker serving four 1 GiB listings at once grows
about five times less with the threshold fixed, at the cost of a slower stream per worker
(docs/benchmark.md, "Tricks the bench keeps", has the figures).

An operator's own MALLOC_MMAP_THRESHOLD_ (glibc's environment tunable) is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
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


def freeze_loaded_objects() -> None:
    """Move every object alive now (the loaded app: modules, schemas, compiled statements) out of the collector's sight.

    A full (generation 2) collection walks every tracked object; with the app loaded that took
    50-70 ms of a worker's time, every few seconds under load, and each one stalled every
    request the worker was serving (the bench's p99). Objects frozen here are never freed,
    which is what happens to the app's own objects anyway; later ones are collected as usual.
    """
    gc.freeze()
