"""Start-up check of a lensfleet container: a node that was given a GPU must show JAX a GPU, or the container
stops here, loudly, instead of joining the cluster as a GPU node whose actors would fail (or silently fall
back to the CPU) later.

LENSFLEET_GPU_CHECK (environment):
  require  this is a GPU node (the GPU worker groups of deploy/ set it): JAX must see at least one GPU.
  auto     (default) a GPU is expected when the container was given NVIDIA devices: /dev/nvidia<N> device
           files, or NVIDIA_VISIBLE_DEVICES naming devices (not "all", "none", "void" or empty: the CUDA base
           image sets "all" even where there is no GPU, e.g. on the CPU head).
  off      no check.

Exit status 0: checked (or nothing to check); 1: a GPU was expected and JAX sees none. The check initialises
JAX's GPU backend without preallocating memory, and exits before Ray starts. Each lensfleet actor also
reports its device when it is ready (the driver's log: "actor ... ready on NODE (gpu: ...)").
"""

from __future__ import annotations

import glob
import os
import sys

NO_DEVICES = ("", "all", "none", "void")


def gpu_expected(env: dict[str, str], device_files: list[str]) -> tuple[bool, str]:
    """(whether this container must see a GPU, why), from its environment and its /dev/nvidia<N> files."""
    mode = env.get("LENSFLEET_GPU_CHECK", "auto").strip().lower()
    if mode == "off":
        return False, "LENSFLEET_GPU_CHECK=off"
    if mode == "require":
        return True, "LENSFLEET_GPU_CHECK=require"
    if mode != "auto":
        raise ValueError(f"LENSFLEET_GPU_CHECK={mode!r}: expected auto, require or off")
    if device_files:
        return True, f"NVIDIA device files {', '.join(sorted(device_files))}"
    visible = env.get("NVIDIA_VISIBLE_DEVICES", "").strip().lower()
    if visible not in NO_DEVICES:
        return True, f"NVIDIA_VISIBLE_DEVICES={visible}"
    return False, "no NVIDIA devices given to this container"


def jax_gpus() -> tuple[list[str], str]:
    """The GPUs JAX sees (descriptions), and the error that hid them, if any."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # look, don't take the memory
    try:
        import jax

        return [f"{d.id}: {d.device_kind}" for d in jax.devices("gpu")], ""
    except Exception as e:  # no GPU backend: RuntimeError; a broken CUDA install: anything
        return [], f"{type(e).__name__}: {e}"


def main() -> int:
    expected, why = gpu_expected(dict(os.environ), glob.glob("/dev/nvidia[0-9]*"))
    if not expected:
        print(f"lensfleet: GPU check skipped ({why})", file=sys.stderr)
        return 0
    gpus, error = jax_gpus()
    if gpus:
        print(f"lensfleet: GPU check passed: JAX sees {len(gpus)} GPU(s): {'; '.join(gpus)}", file=sys.stderr)
        return 0
    print(
        "\n".join([
            "lensfleet: GPU CHECK FAILED: this container was given a GPU "
            f"({why}) but JAX sees no GPU device.",
            f"  jax error: {error or 'none (jax.devices(gpu) is empty)'}",
            f"  JAX_PLATFORMS={os.environ.get('JAX_PLATFORMS', '')!r} "
            f"NVIDIA_VISIBLE_DEVICES={os.environ.get('NVIDIA_VISIBLE_DEVICES', '')!r} "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}",
            "  Check the node's NVIDIA driver (nvidia-smi), that the image's jax[cuda12] matches it, and that the "
            "pod requested nvidia.com/gpu. Set LENSFLEET_GPU_CHECK=off to start anyway.",
        ]),
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
