"""The engine's process settings: x64 on, XLA's multi-threaded Eigen off, OpenBLAS on one thread — unless the
user set them (each check runs in a fresh interpreter, since the settings must precede JAX's start)."""

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


def _probe(env: dict) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "OPENBLAS_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_defaults_are_fp64_single_threaded_eigen_and_openblas():
    seen = _probe({})
    assert seen == {"x64": "float64", "xla": "--xla_cpu_multi_thread_eigen=false", "openblas": "1"}


def test_the_users_own_settings_win():
    seen = _probe({"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true", "OPENBLAS_NUM_THREADS": "4"})
    assert seen["xla"] == "--xla_cpu_multi_thread_eigen=true" and seen["openblas"] == "4"
