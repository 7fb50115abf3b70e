"""Imports point one way (DESIGN.md §2, README "Layout"): scheduler → workers → storage, and the engine imports
nothing of ours but itself and the JAX-free model description it is keyed by.

Read from the source (every `import` statement, module level or inside a function), not by importing it:

    workers/inversion   numpy, jax, jaxnnls, the standard library, workers.inversion, workers.model
    workers/model       numpy, the standard library, workers.model
    storage             no jax, jaxlib, jaxnnls, ray, workers, scheduler (anywhere)
    scheduler           no jax, jaxlib, jaxnnls and no workers.inversion at module level
    workers             no scheduler (anywhere)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
JAX = {"jax", "jaxlib", "jaxnnls"}


def imports(path: Path, root: Path = ROOT) -> list[tuple[str, bool]]:
    """(absolute module name, at module level) of every import in a file; relative imports resolved."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module
            found.append((name, id(node) in top))
    return found


def sources(folder: str, root: Path = ROOT) -> list[Path]:
    return sorted((root / folder).rglob("*.py"))


def under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def violations(folder: str, allowed, root: Path = ROOT) -> list[str]:
    return [f"{path.relative_to(root)} imports {name}" for path in sources(folder, root)
            for name, module_level in imports(path, root) if not allowed(name, module_level)]


RULES = {
    "workers/inversion": lambda name, _: name.split(".")[0] in STDLIB | JAX | {"numpy"}
    or under(name, "workers.inversion", "workers.model"),
    "workers/model": lambda name, _: name.split(".")[0] in STDLIB | {"numpy"} or under(name, "workers.model"),
    "storage": lambda name, _: not under(name, *JAX, "ray", "workers", "scheduler"),
    "scheduler": lambda name, module_level: not (module_level and under(name, *JAX, "workers.inversion")),
    "workers": lambda name, _: not under(name, "scheduler"),
}


@pytest.mark.parametrize("folder", sorted(RULES))
def test_imports_point_one_way(folder):
    assert sources(folder), f"no modules under {folder}"
    assert violations(folder, RULES[folder]) == []


def test_the_rules_catch_wrong_imports(tmp_path):
    """Function-level and relative imports are seen: planted modules break each rule."""
    planted = {
        "workers/inversion/a.py": "from .. import config\n\ndef f():\n    import ray\n",
        "workers/model/a.py": "import jax\n",
        "storage/a.py": "def f():\n    from workers.inversion import fit\n",
        "scheduler/a.py": "import jax.numpy\n\ndef f():\n    import jax  # inside a function: allowed\n",
        "workers/a.py": "def f():\n    from scheduler import cli\n",
    }
    for name, text in planted.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = [v for folder, rule in RULES.items() for v in violations(folder, rule, tmp_path)]
    assert sorted(found) == sorted([
        "workers/inversion/a.py imports workers", "workers/inversion/a.py imports ray",
        "workers/model/a.py imports jax", "storage/a.py imports workers.inversion",
        "scheduler/a.py imports jax.numpy", "workers/a.py imports scheduler",
    ])
