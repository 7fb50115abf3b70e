"""`make demo` (`lensfleet demo --out DIR`): a small survey from simulation to results, with the commands a user
would type, each run as its own process and echoed as it runs:

    lensfleet simulate 8 --out DIR/survey --seed 4
    lensfleet run DIR/survey/catalog.ecsv --config DIR/survey/fit.toml --store DIR/results.zarr --block-size 4 --restart
    lensfleet status DIR/results.zarr
    lensfleet show DIR/results.zarr lens-00000 -o DIR/lens-00000.png

The run starts a local Ray cluster (one CPU actor per 2 CPUs, or one per GPU). This process imports neither JAX
nor Ray, so on a GPU machine the actors get the GPU. `--restart` makes a repeated demo start afresh.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

DEMO_LENSES = 8
DEMO_SEED = 4  # 8 lenses covering all three imagings, 1- and 2-source lenses
DEMO_BLOCK_SIZE = 4
SHOWN_LENS = "lens-00000"


class DemoError(RuntimeError):
    """A step of the demo failed; the message names the command."""


def _step(args: list[str]) -> None:
    print(f"\n$ lensfleet {shlex.join(args)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scheduler.cli", *args])
    if done.returncode != 0:
        raise DemoError(f"`lensfleet {shlex.join(args)}` exited with {done.returncode}")
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def run_demo(out: Path) -> None:
    """Simulate, fit on a local Ray cluster, summarise and draw one lens, under `out`."""
    out = Path(out).resolve()
    survey, store, picture = out / "survey", out / "results.zarr", out / f"{SHOWN_LENS}.png"
    started = time.perf_counter()
    _step(["simulate", str(DEMO_LENSES), "--out", str(survey), "--seed", str(DEMO_SEED)])
    _step(["run", str(survey / "catalog.ecsv"), "--config", str(survey / "fit.toml"), "--store", str(store),
           "--block-size", str(DEMO_BLOCK_SIZE), "--restart"])
    _step(["status", str(store)])
    _step(["show", str(store), SHOWN_LENS, "-o", str(picture)])
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s")
    print(f"  survey:  {survey}  (catalog.ecsv, fit.toml, lenses/ID/*.fits, truth.json)")
    print(f"  store:   {store}  (open_results('{store}').table() in a notebook)")
    print(f"  picture: {picture}")
