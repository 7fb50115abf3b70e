"""Process setup of a worker: what JAX, XLA and BLAS read at start-up, the compilation cache, the device.

`configure_runtime` runs in an actor before JAX is imported:
- CPU-only actor (num_gpus == 0): JAX_PLATFORMS=cpu, so JAX does not look for (or grab) an accelerator.
- Fractional GPU (0 < num_gpus < 1): XLA_PYTHON_CLIENT_MEM_FRACTION = 0.9 × num_gpus, so the actors packed on one
  GPU fit beside each other. A whole GPU keeps JAX's default preallocation.
- XLA CPU threads = the CPUs the actor reserved: XLA sizes its thread pools from the CPUs the process may run on
  (sched_getaffinity) and has no intra-op thread option, so an actor that reserved fewer CPUs than the node has
  pins itself to that many, chosen by its slot number so that the actors of one node take different CPUs.
  `--xla_cpu_multi_thread_eigen=false` (workers.inversion.jax_setup) keeps Eigen from starting a pool of its own.
- BLAS already loaded in the process (scipy's OpenBLAS, whose LAPACK jaxlib's CPU kernels call) capped at one
  thread unless OPENBLAS_NUM_THREADS says otherwise, as jax_setup does for BLAS loaded after it.

An actor given a GPU whose JAX computes on the CPU refuses to start (`check_gpu`): JAX would fall back to the CPU
silently, 100× slower, on a node paid for its GPU.
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Mapping

GPU_MEMORY_SHARE = 0.9  # of an actor's GPU fraction, given to XLA's allocator
EIGEN_FLAG = "--xla_cpu_multi_thread_eigen"


def default_compile_cache() -> str:
    """The persistent compilation cache folder of this node: LENSFLEET_COMPILE_CACHE, else
    ~/.cache/lensfleet/jax. Compiled programs are keyed by JAX/XLA version, backend and program, so one folder
    serves every run and bucket; a restarted actor loads its programs instead of compiling them."""
    return os.environ.get("LENSFLEET_COMPILE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "lensfleet", "jax"
    )


def configure_runtime(num_cpus: float | None, num_gpus: float, slot: int = 0) -> dict:
    """Set what JAX, XLA and BLAS read for an actor with these resources (module docstring). Call before JAX is
    imported in this process. Returns what was set, for the start-up report."""
    from threadpoolctl import threadpool_limits

    settings: dict = {}
    if num_gpus <= 0:
        os.environ["JAX_PLATFORMS"] = "cpu"
        settings["JAX_PLATFORMS"] = "cpu"
    elif num_gpus < 1:
        fraction = f"{GPU_MEMORY_SHARE * num_gpus:.3f}"
        os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = fraction
        settings["XLA_PYTHON_CLIENT_MEM_FRACTION"] = fraction
    if EIGEN_FLAG not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {EIGEN_FLAG}=false".strip()
    settings["XLA_FLAGS"] = os.environ["XLA_FLAGS"]
    if "OPENBLAS_NUM_THREADS" not in os.environ:  # jax_setup sets it for BLAS loaded from now on; this caps
        threadpool_limits(1, user_api="blas")  # the one already loaded (scipy's, imported by the priors)
    settings["cpus"] = sorted(pin_cpus(num_cpus, slot))
    return settings


def pin_cpus(num_cpus: float | None, slot: int) -> set[int]:
    """Restrict this process to ceil(num_cpus) of the CPUs it may use, the slot-th such group; all if fewer
    (or if num_cpus is None: an actor class used outside Ray leaves its process alone)."""
    if not hasattr(os, "sched_getaffinity"):
        return set()
    allowed = sorted(os.sched_getaffinity(0))
    if num_cpus is None:
        return set(allowed)
    want = max(1, math.ceil(num_cpus))
    if want >= len(allowed):
        return set(allowed)
    start = (slot * want) % len(allowed)
    chosen = {allowed[(start + i) % len(allowed)] for i in range(want)}
    os.sched_setaffinity(0, chosen)
    return chosen


def enable_compile_cache(folder: str) -> None:
    """JAX's persistent compilation cache in `folder`, for every program however quick to compile."""
    import jax

    os.makedirs(folder, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


class CompileLog:
    """Counts XLA compilations and persistent-cache hits of this process (jax.monitoring listeners)."""

    _COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch.BACKEND_COMPILE_EVENT
    _CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"

    def __init__(self):
        import jax.monitoring

        self.compiles = 0
        self.seconds = 0.0
        self.cache_hits = 0

        def on_duration(event: str, duration: float, **_):
            if event == self._COMPILE_EVENT:
                self.compiles += 1
                self.seconds += duration

        def on_event(event: str, **_):
            if event == self._CACHE_HIT_EVENT:
                self.cache_hits += 1

        jax.monitoring.register_event_duration_secs_listener(on_duration)
        jax.monitoring.register_event_listener(on_event)

    def snapshot(self) -> tuple[int, float, int]:
        """(compiles, compile seconds, cache hits) so far."""
        return self.compiles, self.seconds, self.cache_hits


def check_gpu(actor: str, num_gpus: float, platform: str, env: Mapping[str, str]) -> None:
    """An actor given a GPU must compute on one: raise (the actor fails to start, loudly) when JAX's device is
    the CPU, e.g. a CPU-only jaxlib or a CUDA driver JAX cannot use, where JAX would silently fall back.
    LENSFLEET_GPU_CHECK=off (in the nodes' environment) allows it, as for the container check."""
    if num_gpus > 0 and platform == "cpu" and env.get("LENSFLEET_GPU_CHECK", "auto").strip().lower() != "off":
        raise RuntimeError(
            f"actor {actor} was given {num_gpus:g} GPU (CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '')!r}) "
            "but JAX computes on the CPU: install JAX with CUDA (jax[cuda12]) on the GPU nodes, or set "
            "LENSFLEET_GPU_CHECK=off there to allow it"
        )


def device_name() -> str:
    """The JAX device the engine runs on, e.g. 'cpu' or 'gpu: NVIDIA H100 80GB HBM3'."""
    import jax

    device = jax.devices()[0]
    return device.platform if device.platform == "cpu" else f"{device.platform}: {device.device_kind}"


def device_memory_stats() -> dict | None:
    """The JAX device's memory statistics (bytes_in_use, peak_bytes_in_use, bytes_limit, ...) on an
    accelerator; None on the CPU, which keeps none."""
    import jax

    device = jax.devices()[0]
    return None if device.platform == "cpu" else (device.memory_stats() or {})


def peak_memory_mb() -> float:
    """Peak device memory on an accelerator, else the process's peak resident memory (MB)."""
    stats = device_memory_stats()
    if stats and "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def node_ip() -> str:
    """This node's IP in the Ray cluster; "local" outside Ray (the actor class used directly)."""
    import ray

    return ray.util.get_node_ip_address() if ray.is_initialized() else "local"
