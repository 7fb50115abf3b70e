"""The engine's one global: JAX runs in x64 (fp64 by default; fp32 only where precision.py says).

Imported first by every engine module that uses JAX, so x64 is on before any array exists and before
jaxnnls fixes its tolerance from the default dtype. On the CPU it also turns off XLA's multi-threaded Eigen
runtime, under which vmap-batched programs hang on 2-core machines (PyAutoLens's vmapped likelihood deadlocks
there without it); a user's own XLA_FLAGS setting of that flag wins. (OpenBLAS threads: see workers/__init__.)
"""

import os

_EIGEN_FLAG = "--xla_cpu_multi_thread_eigen"
if _EIGEN_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {_EIGEN_FLAG}=false").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
