"""The engine's process settings: x64 on, XLA's multi-threaded Eigen off, OpenBLAS on one thread, large
allocations kept in the heap — unless the user set them (each check runs in a fresh interpreter, since the
settings must precede JAX's start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = (
    "import os, json, jax.numpy as jnp; import workers.inversion.fit; "
    "print(json.dumps({'x64': str(jnp.ones(1).dtype), 'xla': os.environ.get('XLA_FLAGS', ''), "
    "'openblas': os.environ.get('OPENBLAS_NUM_THREADS')}))"
)


# Page faults of a second 64 MB malloc after the first was freed: its pages are fresh (an mmap) unless the
# heap kept them.
FAULTS = (
    "import ctypes, resource, workers.inversion.jax_setup; libc = ctypes.CDLL('libc.so.6'); libc.malloc.restype = ctypes.c_void_p; "
    "n = 64 << 20; p = libc.malloc(n); ctypes.memset(p, 1, n); libc.free(ctypes.c_void_p(p)); "
    "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt; p = libc.malloc(n); ctypes.memset(p, 1, n); "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)"
)


def _probe(env: dict, code: str = PROBE) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "OPENBLAS_NUM_THREADS", "MALLOC_MMAP_MAX_")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_defaults_are_fp64_single_threaded_eigen_and_openblas():
    seen = _probe({})
    assert seen == {"x64": "float64", "xla": "--xla_cpu_multi_thread_eigen=false", "openblas": "1"}


def test_the_users_own_settings_win():
    seen = _probe({"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true", "OPENBLAS_NUM_THREADS": "4"})
    assert seen["xla"] == "--xla_cpu_multi_thread_eigen=true" and seen["openblas"] == "4"


def test_a_freed_large_allocation_is_reused_without_page_faults_unless_the_user_says_otherwise():
    pages = (64 << 20) // 4096
    assert _probe({}, FAULTS) < pages // 10
    assert _probe({"MALLOC_MMAP_MAX_": "65536"}, FAULTS) > pages // 2  # glibc's default: a fresh mmap
