"""storage imports no jax, no ray and nothing of the engine or the driver (DESIGN.md section 2)."""

import subprocess
import sys

FORBIDDEN = ("jax", "jaxlib", "jaxnnls", "ray", "workers", "scheduler")
MODULES = ("catalog", "datasets", "errors", "lease", "locations", "reader", "schema", "store")


def test_importing_every_storage_module_leaves_jax_ray_workers_and_scheduler_out():
    code = (
        "import sys\n"
        + "".join(f"import storage.{m}\n" for m in MODULES)
        + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
