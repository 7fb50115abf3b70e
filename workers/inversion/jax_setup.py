"""The engine's one global: JAX runs in x64 (fp64 by default; fp32 only where precision.py says).

Imported first by every engine module that uses JAX, so x64 is on before any array exists and before
jaxnnls fixes its tolerance from the default dtype. Before JAX starts it also sets three process defaults (a
user's own setting of each wins):
- XLA's multi-threaded Eigen runtime off on the CPU: vmap-batched programs hung under it on 2-core machines
  (PyAutoLens's vmapped likelihood deadlocks there without it);
- OpenBLAS (scipy's, whose LAPACK jaxlib's CPU kernels call) on one thread: its threads busy-wait on shared
  cores, which made a 400×400 Cholesky ~17× slower on a loaded 2-core machine. A process that loaded scipy
  before the engine caps it with workers.runtime.configure_runtime.
- Large allocations kept in the heap (glibc's malloc: M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 2 GiB) unless the
  user sets MALLOC_MMAP_MAX_: glibc serves every allocation above its mmap threshold (at most 32 MiB) by a
  fresh mmap and unmaps it when freed, so the ~39 MB of temporaries of one pixelized-source evaluation on
  reference A0 were page-faulted in anew on every call (9,500 page faults, a quarter of its time; measured
  92 instead of 125 ms per call with the heap kept).
"""

import ctypes
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

_EIGEN_FLAG = "--xla_cpu_multi_thread_eigen"
if _EIGEN_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {_EIGEN_FLAG}=false").strip()

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


_keep_large_allocations_in_the_heap()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
