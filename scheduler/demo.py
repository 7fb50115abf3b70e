"""`make demo` (`lensfleet demo --out DIR [--long]`): a small survey from simulation to fitted lens models, with
the commands a user would type, each run as its own process and echoed as it runs:

    lensfleet simulate 6 --out DIR/survey --seed 4 --pixel-scale 0.1
    lensfleet run DIR/survey/catalog.ecsv --config DIR/fit_search.toml --store DIR/results.zarr --block-size 3 --restart
    lensfleet status DIR/results.zarr
    lensfleet show DIR/results.zarr lens-00000 -o DIR/lens-00000.png --corner DIR/lens-00000-corner.png

The run *fits* the survey: DIR/fit_search.toml is the survey's fit.toml with a small, fast model and search
(QUICK: a 10-Gaussian MGE source, no over-sampling, a Nautilus search with small settings and priors as wide
as the simulation's ranges; a real survey keeps the defaults), then a second pipeline stage, the pixelized
source evaluated at each lens's maximum-likelihood lens model. The quick demo's lenses share one imaging (one
shape bucket, so one compile per program); `--long` fits 8 lenses of all three imagings with the survey's own
model and wider search settings.

The run starts a local Ray cluster (one CPU actor per 2 CPUs, or one per GPU). This process imports neither JAX
nor Ray, so on a GPU machine the actors get the GPU. `--restart` makes a repeated demo start afresh.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SHOWN_LENS = "lens-00000"
PRIORS = """
# Added by `lensfleet demo`: priors as wide as the simulation's ranges (workers/survey.py draw_lens), narrower
# than the survey defaults, and a search with small, fast settings (defaults: workers/config.py).
[priors]
"lens.mass.centre" = { type = "uniform", lower = -0.1, upper = 0.1 }
"lens.mass.ell_comps" = { type = "uniform", lower = -0.3, upper = 0.3 }
"lens.mass.einstein_radius" = { type = "uniform", lower = 0.6, upper = 2.0 }
"lens.shear.gamma_1" = { type = "uniform", lower = -0.1, upper = 0.1 }
"lens.shear.gamma_2" = { type = "uniform", lower = -0.1, upper = 0.1 }
"source.centre" = { type = "uniform", lower = -0.4, upper = 0.4 }
"source.ell_comps" = { type = "uniform", lower = -0.3, upper = 0.3 }
"""
SOURCE_PIX = """
[[stages]]
name = "source_pix"
source = {{ type = "rectangular", shape = [{n}, {n}], regularization = 1.0 }}
search = false
"""


@dataclass(frozen=True)
class Demo:
    """One demo: how many lenses and how they are imaged, the fit config it writes, the block size."""

    lenses: int
    simulate: tuple[str, ...]
    model: str  # fit.toml's model tables, or "" for the survey's own
    search: str
    mesh: int
    block_size: int


QUICK = Demo(
    lenses=6, simulate=("--pixel-scale", "0.1"), block_size=3, mesh=14,
    model="""[dataset]
mask_radius = 2.8
over_sample_size_lp = 1
over_sample_size_pixelization = 1

[lens.mass]
type = "isothermal"

[lens.shear]

[source]
type = "mge"
gaussians = 10
sigma_min = 0.02
""",
    search="""
[search]
n_live = 50
n_batch = 50
n_eff = 80
f_live = 0.3
n_like_max = 6000
n_networks = 1
network_layers = [16]
network_epochs = 30
seed = 1
max_samples = 500
eval_chunk = 1           # one evaluation per compiled call: on a CPU 2-4x cheaper than a vmapped chunk
""",
)
LONG = Demo(
    lenses=8, simulate=(), block_size=4, mesh=20, model="",
    search="""
[search]
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
""",
)
DEMO_SEED = 4  # the long demo's 8 lenses cover all three imagings, 1- and 2-source lenses


class DemoError(RuntimeError):
    """A step of the demo failed; the message names the command."""


def _step(args: list[str]) -> None:
    print(f"\n$ lensfleet {shlex.join(args)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scheduler.cli", *args])
    if done.returncode != 0:
        raise DemoError(f"`lensfleet {shlex.join(args)}` exited with {done.returncode}")
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def run_demo(out: Path, long: bool = False) -> None:
    """Simulate, fit on a local Ray cluster, summarise and draw one lens, under `out`."""
    demo = LONG if long else QUICK
    out = Path(out).resolve()
    survey, store, picture = out / "survey", out / "results.zarr", out / f"{SHOWN_LENS}.png"
    corner, config = out / f"{SHOWN_LENS}-corner.png", out / "fit_search.toml"
    started = time.perf_counter()
    _step(["simulate", str(demo.lenses), "--out", str(survey), "--seed", str(DEMO_SEED), *demo.simulate])
    model = demo.model or (survey / "fit.toml").read_text()
    config.write_text(model + PRIORS + demo.search + SOURCE_PIX.format(n=demo.mesh))
    print(f"\n(wrote {config}: the fit config, a [search] and a source_pix stage)", flush=True)
    _step(["run", str(survey / "catalog.ecsv"), "--config", str(config), "--store", str(store),
           "--block-size", str(demo.block_size), "--restart"])
    _step(["status", str(store)])
    _step(["show", str(store), SHOWN_LENS, "-o", str(picture), "--corner", str(corner)])
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s")
    print(f"  survey:  {survey}  (catalog.ecsv, fit.toml, lenses/ID/*.fits, truth.json)")
    print(f"  store:   {store}  (open_results('{store}').table() in a notebook)")
    print(f"  picture: {picture}  corner plot: {corner}")
