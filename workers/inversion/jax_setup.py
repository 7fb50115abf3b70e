"""The engine's one global: JAX runs in x64 (fp64 by default; fp32 only where precision.py says).

Imported first by every engine module that uses JAX, so x64 is on before any array exists and before
jaxnnls fixes its tolerance from the default dtype. Before JAX starts it also sets two process defaults (a
user's own setting of either wins):
- XLA's multi-threaded Eigen runtime off on the CPU: vmap-batched programs hung under it on 2-core machines
  (PyAutoLens's vmapped likelihood deadlocks there without it);
- OpenBLAS (scipy's, whose LAPACK jaxlib's CPU kernels call) on one thread: its threads busy-wait on shared
  cores, which made a 400×400 Cholesky ~17× slower on a loaded 2-core machine. A process that loaded scipy
  before the engine caps it with workers.runtime.configure_runtime.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

_EIGEN_FLAG = "--xla_cpu_multi_thread_eigen"
if _EIGEN_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {_EIGEN_FLAG}=false").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
