"""The driver never imports JAX (DESIGN.md §2): importing every scheduler and storage module — and the actor class
the driver starts — in a fresh interpreter leaves `jax` out of sys.modules."""

import pkgutil
import subprocess
import sys

import scheduler
import storage


def modules() -> list[str]:
    found = ["workers.actor"]
    for package in (scheduler, storage):
        found += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    return sorted(found)


def test_importing_every_scheduler_and_storage_module_leaves_jax_out():
    names = modules()
    assert {"scheduler.driver", "scheduler.plan", "scheduler.cli", "storage.store"} <= set(names)
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'jaxnnls')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
