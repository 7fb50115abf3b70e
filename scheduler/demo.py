"""`make demo` (`lensfleet demo --out DIR`): a small survey from simulation to fitted lens models, with the
commands a user would type, each run as its own process and echoed as it runs:

    lensfleet simulate 8 --out DIR/survey --seed 4
    lensfleet run DIR/survey/catalog.ecsv --config DIR/fit_search.toml --store DIR/results.zarr --block-size 4 --restart
    lensfleet status DIR/results.zarr
    lensfleet show DIR/results.zarr lens-00000 -o DIR/lens-00000.png --corner DIR/lens-00000-corner.png

The run *fits* the survey: DIR/fit_search.toml is the survey's fit.toml plus DEMO_SEARCH (a Nautilus search of
every lens with small, fast settings and priors matching the simulation's ranges, so the demo takes minutes;
a real survey keeps the defaults), then the pixelized-source stage at each lens's max-likelihood lens model
(a [[stages]] entry).

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
DEMO_SEARCH = """
# Added by `lensfleet demo`: search every lens's model with small, fast settings (defaults: workers/config.py),
# and priors as wide as the simulation's ranges (workers/survey.py draw_lens), narrower than the survey defaults.
[priors]
"lens.mass.centre" = { type = "uniform", lower = -0.1, upper = 0.1 }
"lens.mass.ell_comps" = { type = "uniform", lower = -0.3, upper = 0.3 }
"lens.mass.einstein_radius" = { type = "uniform", lower = 0.6, upper = 2.0 }
"lens.shear.gamma_1" = { type = "uniform", lower = -0.1, upper = 0.1 }
"lens.shear.gamma_2" = { type = "uniform", lower = -0.1, upper = 0.1 }
"source.centre" = { type = "uniform", lower = -0.4, upper = 0.4 }
"source.ell_comps" = { type = "uniform", lower = -0.3, upper = 0.3 }

[search]
type = "nautilus"
n_live = 60
n_batch = 50
n_eff = 100
f_live = 0.2
n_like_max = 10000
n_networks = 1
network_layers = [32, 16]
network_epochs = 50
seed = 1
max_samples = 1000

[[stages]]
name = "source_pix"
source = { type = "rectangular", shape = [20, 20], regularization = 1.0 }
search = false
"""


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
    corner, config = out / f"{SHOWN_LENS}-corner.png", out / "fit_search.toml"
    started = time.perf_counter()
    _step(["simulate", str(DEMO_LENSES), "--out", str(survey), "--seed", str(DEMO_SEED)])
    config.write_text((survey / "fit.toml").read_text() + DEMO_SEARCH)
    print(f"\n(wrote {config}: the survey's fit.toml plus a [search] and a source_pix stage)", flush=True)
    _step(["run", str(survey / "catalog.ecsv"), "--config", str(config), "--store", str(store),
           "--block-size", str(DEMO_BLOCK_SIZE), "--restart"])
    _step(["status", str(store)])
    _step(["show", str(store), SHOWN_LENS, "-o", str(picture), "--corner", str(corner)])
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s")
    print(f"  survey:  {survey}  (catalog.ecsv, fit.toml, lenses/ID/*.fits, truth.json)")
    print(f"  store:   {store}  (open_results('{store}').table() in a notebook)")
    print(f"  picture: {picture}  corner plot: {corner}")
