"""What runs inside a worker process: the engine (inversion/), config, priors, search, the Ray actor.

Two process settings, made here, at the top of the package, before scipy or JAX allocate anything:

- OpenBLAS (scipy's, which jaxlib's CPU LAPACK kernels use) is kept to one thread unless the user says
  otherwise: its threads busy-wait on shared cores, which made a 400×400 Cholesky ~17× slower on a loaded
  2-core machine.
- Large allocations stay in the heap (glibc's malloc: M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 2 GiB) unless the
  user sets MALLOC_MMAP_MAX_: glibc serves every allocation above its mmap threshold (at most 32 MiB) by a
  fresh mmap and unmaps it when freed, so the ~39 MB of temporaries of one pixelized-source evaluation on
  reference A0 were page-faulted in anew on every call (9,500 page faults, a quarter of its time; measured
  92 instead of 125 ms per call with the heap kept).
"""

import ctypes
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def _keep_large_allocations_in_the_heap() -> bool:
    """mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, 2 GiB); False where that is not glibc's malloc or
    the user set MALLOC_MMAP_MAX_ (glibc reads it itself)."""
    if "MALLOC_MMAP_MAX_" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


LARGE_ALLOCATIONS_IN_HEAP = _keep_large_allocations_in_the_heap()
