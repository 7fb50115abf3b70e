"""fit.toml: the run configuration, parsed and checked once (pure Python, no JAX).

    [dataset]      mask_radius (arcsec), over_sample_size_lp, over_sample_size_pixelization
                   (an integer, or {sub_sizes = [...], radii = [...]} for radial-bin adaptive over-sampling)
    [lens.mass]    type = a name in MASS_PROFILES ("isothermal")
    [lens.shear]   present = ExternalShear on
    [lens.light]   optional: type = "mge", gaussians, sigma_min
    [source]       type = "mge", gaussians, sigma_min  |  type = "rectangular", shape = [ny, nx], regularization
    [settings]     the five Settings keys (PyAutoLens's names and defaults)
    [priors]       optional: "flattened.parameter.name" = { type = "uniform" | "gaussian" | "truncated_gaussian",
                   lower, upper, mean, sigma as the type needs } (workers/priors.py: types and survey defaults)
    [search]       optional, turns evaluate mode into search mode: type = "nautilus", n_live, n_batch, n_eff,
                   f_live, n_like_max, n_networks, network_layers, network_epochs, discard_exploration, seed,
                   max_samples, checkpoint, eval_chunk (SearchOptions below: meanings and defaults)
    [source_pix]   optional, with [search]: a second pipeline stage, the source as a pixelization (type =
                   "rectangular", shape, regularization) evaluated at the search's max-likelihood lens model

Every unknown key or wrong type is a ConfigError naming the file and the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
import tomllib
from typing import Any

from .model.grids import OverSampling, RadialOverSampling
from .model.description import MASS_PROFILES, MGEBasis, Model, RectangularSource, parameter_names
from .model.settings import Settings
from .priors import Prior, prior_from_dict, prior_to_dict


class ConfigError(ValueError):
    """A problem in fit.toml, naming the file and the key."""


@dataclass(frozen=True)
class DatasetOptions:
    """How each dataset is masked and over-sampled."""

    mask_radius: float = 3.0
    over_sample_size_lp: OverSampling = 4
    over_sample_size_pixelization: OverSampling = 4


@dataclass(frozen=True)
class SearchOptions:
    """fit.toml's [search]: a Nautilus search per lens (workers/search.py), the lenses of a block side by side.

    type: "nautilus" (the only one so far).
    n_live: live points (Nautilus's n_live). 200.
    n_batch: points per likelihood request of one sampler (Nautilus's n_batch); also V, the vectors per lens of
        the compiled block call (lenses × n_batch). 100.
    n_eff: stop once the effective sample size of the posterior reaches this. 500.
    f_live: the exploration phase ends once the live set holds less than this fraction of the evidence. 0.01.
    n_like_max: stop after this many likelihood evaluations of a lens, converged or not (absent: no limit).
    n_networks: neural networks per Nautilus bound (fewer is faster, coarser). 4.
    network_layers: hidden-layer sizes of each network (smaller is faster, coarser). [100, 50, 20], Nautilus's.
    network_epochs: at most this many training epochs per network (Nautilus stops earlier once 10 epochs bring
        no improvement). 10000, Nautilus's. A few dozen cut the samplers' own time severalfold; a coarser
        network only costs likelihood calls, never correctness (the posterior comes from importance weights).
    discard_exploration: drop the exploration-phase points from the posterior (unbiased but fewer). false.
    seed: the run's seed; each lens's search is seeded from (seed, dataset id), so a lens's posterior does not
        depend on which lenses share its block. 0.
    max_samples: posterior samples kept per lens in the store: all weighted points if there are fewer,
        otherwise a deterministic systematic resample to at most this many distinct points (weights =
        multiplicity / max_samples). 2000.
    checkpoint: keep a Nautilus checkpoint (HDF5) per lens while it runs, so a killed worker resumes its
        searches instead of restarting them. true.
    eval_chunk: evaluations vectorised together per compiled call (0: the whole lenses × n_batch block at
        once, right for a GPU; c > 0 runs the lenses one after another, c vectors per call, and skips idle
        ones: right for a CPU, where 1 is fastest). Absent: chosen by the device (search.auto_eval_chunk, or
        a measured sizing.BatchPlan).
    """

    type: str = "nautilus"
    n_live: int = 200
    n_batch: int = 100
    n_eff: float = 500.0
    f_live: float = 0.01
    n_like_max: int | None = None
    n_networks: int = 4
    network_layers: tuple[int, ...] = (100, 50, 20)
    network_epochs: int = 10000
    discard_exploration: bool = False
    seed: int = 0
    max_samples: int = 2000
    checkpoint: bool = True
    eval_chunk: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """fit.toml's [search] table (n_like_max left out when unlimited)."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["network_layers"] = list(self.network_layers)
        return out


@dataclass(frozen=True)
class FitConfig:
    """The whole of fit.toml: dataset options, the lens model (with its Settings), prior overrides (name →
    prior; survey defaults for the rest, see workers/priors.py), the search (None: evaluate mode) and the
    pipeline's second stage, a pixelized source (None: none)."""

    dataset: DatasetOptions = field(default_factory=DatasetOptions)
    model: Model = field(default_factory=lambda: Model(source=MGEBasis()))
    origin: str = "<defaults>"
    priors: dict[str, Prior] = field(default_factory=dict, hash=False)
    search: SearchOptions | None = None
    source_pix: RectangularSource | None = None

    @property
    def stages(self) -> tuple[tuple[str, Model], ...]:
        """The later pipeline stages as (store group, model): the search's lens model with a pixelized source."""
        if self.source_pix is None:
            return ()
        return (("source_pix", replace(self.model, source=self.source_pix)),)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict in fit.toml's structure (for the store's attributes)."""
        m = self.model
        lens: dict[str, Any] = {"mass": {"type": m.mass.name}}
        if m.shear:
            lens["shear"] = {}
        if m.lens_light is not None:
            lens["light"] = {"type": "mge", **asdict(m.lens_light)}
        if m.pixelized:
            source = {"type": "rectangular", "shape": list(m.source.shape), "regularization": m.source.regularization}
        else:
            source = {"type": "mge", **asdict(m.source)}
        out = {
            "dataset": {k: _plain(v) for k, v in asdict(self.dataset).items()},
            "lens": lens,
            "source": source,
            "settings": asdict(m.settings),
        }
        if self.priors:
            out["priors"] = {name: prior_to_dict(prior) for name, prior in self.priors.items()}
        if self.search is not None:
            out["search"] = self.search.to_dict()
        if self.source_pix is not None:
            out["source_pix"] = {"type": "rectangular", "shape": list(self.source_pix.shape),
                                 "regularization": self.source_pix.regularization}
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: [list(c) if isinstance(c, tuple) else c for c in v] for k, v in value.items()}
    return value


def load_config(path: str | Path) -> FitConfig:
    """Read and check fit.toml."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return parse_config(raw, str(path))


def parse_config(raw: dict[str, Any], where: str = "<config>") -> FitConfig:
    """Check a fit.toml-shaped dict; `where` names its origin in error messages."""
    reader = _Reader(where)
    reader.keys(raw, "", {"dataset", "lens", "source", "settings", "priors", "search", "source_pix"})
    dataset = _dataset(reader, raw.get("dataset", {}))
    lens = raw.get("lens", {})
    reader.keys(lens, "lens", {"mass", "shear", "light"})
    mass = lens.get("mass", {"type": "isothermal"})
    reader.keys(mass, "lens.mass", {"type"})
    mass_type = mass.get("type", "isothermal")
    if mass_type not in MASS_PROFILES:
        raise reader.fail("lens.mass.type", f"must be one of {sorted(MASS_PROFILES)}, got {mass_type!r}")
    if "shear" in lens:
        reader.keys(lens["shear"], "lens.shear", set())
    light = _mge(reader, lens["light"], "lens.light") if "light" in lens else None
    source = _source(reader, raw.get("source", {"type": "mge"}))
    settings = _settings(reader, raw.get("settings", {}))
    model = Model(source=source, shear="shear" in lens, lens_light=light, settings=settings,
                  mass=MASS_PROFILES[mass_type]())
    priors = _priors(reader, raw.get("priors", {}), model)
    search = _search(reader, raw["search"]) if "search" in raw else None
    source_pix = None
    if "source_pix" in raw:
        if search is None:
            raise reader.fail("source_pix", "a second stage needs a [search] first (it starts from its result)")
        if model.pixelized:
            raise reader.fail("source_pix", "the first stage's [source] is already pixelized; use type = \"mge\"")
        table = raw["source_pix"]
        if not isinstance(table, dict) or table.get("type", "rectangular") != "rectangular":
            raise reader.fail("source_pix.type", "must be \"rectangular\"")
        source_pix = _source(reader, {**table, "type": "rectangular"}, "source_pix")
    return FitConfig(dataset=dataset, model=model, origin=where, priors=priors, search=search,
                     source_pix=source_pix)


class _Reader:
    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: {key}: {problem}")

    def keys(self, table: Any, prefix: str, allowed: set[str]) -> None:
        if not isinstance(table, dict):
            raise self.fail(prefix or "<root>", "must be a table")
        for key in table:
            if key not in allowed:
                name = f"{prefix}.{key}" if prefix else key
                hint = f" (known: {', '.join(sorted(allowed))})" if allowed else ""
                raise self.fail(name, f"unknown key{hint}")

    def number(self, table: dict, prefix: str, key: str, default: float, positive: bool = True) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{prefix}.{key}", f"must be a number, got {value!r}")
        if positive and value <= 0:
            raise self.fail(f"{prefix}.{key}", f"must be > 0, got {value!r}")
        return float(value)

    def integer(self, table: dict, prefix: str, key: str, default: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(f"{prefix}.{key}", f"must be a positive integer, got {value!r}")
        return value


def _over_sampling(reader: _Reader, table: dict, key: str, default: int) -> OverSampling:
    value = table.get(key, default)
    name = f"dataset.{key}"
    if isinstance(value, dict):
        reader.keys(value, name, {"sub_sizes", "radii", "centres"})
        sizes, radii = value.get("sub_sizes"), value.get("radii")
        if not sizes or not radii or len(sizes) != len(radii) + 1 and len(sizes) != len(radii):
            raise reader.fail(name, "needs sub_sizes = [...] and radii = [...] (one size per radius, or one more)")
        centres = tuple(tuple(map(float, c)) for c in value.get("centres", [(0.0, 0.0)]))
        return RadialOverSampling(tuple(int(s) for s in sizes), tuple(float(r) for r in radii), centres)
    return reader.integer(table, "dataset", key, default)


def _dataset(reader: _Reader, table: dict) -> DatasetOptions:
    reader.keys(table, "dataset", {"mask_radius", "over_sample_size_lp", "over_sample_size_pixelization"})
    return DatasetOptions(
        mask_radius=reader.number(table, "dataset", "mask_radius", 3.0),
        over_sample_size_lp=_over_sampling(reader, table, "over_sample_size_lp", 4),
        over_sample_size_pixelization=_over_sampling(reader, table, "over_sample_size_pixelization", 4),
    )


def _mge(reader: _Reader, table: dict, prefix: str) -> MGEBasis:
    reader.keys(table, prefix, {"type", "gaussians", "sigma_min"})
    if table.get("type", "mge") != "mge":
        raise reader.fail(f"{prefix}.type", f"must be \"mge\", got {table['type']!r}")
    return MGEBasis(
        gaussians=reader.integer(table, prefix, "gaussians", MGEBasis.gaussians),
        sigma_min=reader.number(table, prefix, "sigma_min", MGEBasis.sigma_min),
    )


def _source(reader: _Reader, table: dict, prefix: str = "source") -> MGEBasis | RectangularSource:
    kind = table.get("type", "mge") if isinstance(table, dict) else None
    if kind == "mge":
        return _mge(reader, table, prefix)
    if kind == "rectangular":
        reader.keys(table, prefix, {"type", "shape", "regularization"})
        shape = table.get("shape", [20, 20])
        if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(s, int) for s in shape)):
            raise reader.fail(f"{prefix}.shape", f"must be [ny, nx] integers, got {shape!r}")
        if min(shape) < 3:
            raise reader.fail(f"{prefix}.shape", f"a rectangular mesh needs at least 3×3 cells, got {shape}")
        return RectangularSource(
            shape=(shape[0], shape[1]), regularization=reader.number(table, prefix, "regularization", 1.0)
        )
    raise reader.fail(f"{prefix}.type", f"must be \"mge\" or \"rectangular\", got {kind!r}")


def _settings(reader: _Reader, table: dict) -> Settings:
    reader.keys(table, "settings", set(Settings.keys()))
    defaults = Settings()
    values = {}
    for key in Settings.keys():
        default = getattr(defaults, key)
        value = table.get(key, default)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise reader.fail(f"settings.{key}", f"must be true or false, got {value!r}")
        if not isinstance(default, bool):
            value = reader.number(table, "settings", key, default)
        values[key] = value
    return Settings(**values)


def _priors(reader: _Reader, table: Any, model: Model) -> dict[str, Prior]:
    if not isinstance(table, dict):
        raise reader.fail("priors", "must be a table")
    names = parameter_names(model)
    priors = {}
    for name, value in _prior_entries(table, ""):
        # A vector's name ("lens.mass.centre") sets the prior of each of its components.
        targets = [name] if name in names else [n for n in names if n.rpartition(".")[0] == name]
        if not targets:
            raise reader.fail(f"priors.{name}", f"not a parameter of this model (parameters: {', '.join(names)})")
        try:
            prior = prior_from_dict(value)
        except ValueError as e:
            raise reader.fail(f"priors.{name}", str(e)) from None
        priors.update((target, prior) for target in targets)
    return priors


def _prior_entries(table: dict, prefix: str):
    """(flattened name, prior table) pairs; quoted dotted keys and nested TOML tables name parameters alike."""
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and "type" not in value and value:
            yield from _prior_entries(value, name)
        else:
            yield name, value


def _search(reader: _Reader, table: Any) -> SearchOptions:
    defaults = SearchOptions()
    reader.keys(table, "search", set(asdict(defaults)))
    if table.get("type", "nautilus") != "nautilus":
        raise reader.fail("search.type", f"only \"nautilus\" is supported, got {table['type']!r}")

    def flag(key: str) -> bool:
        value = table.get(key, getattr(defaults, key))
        if not isinstance(value, bool):
            raise reader.fail(f"search.{key}", f"must be true or false, got {value!r}")
        return value

    def count(key: str, minimum: int = 1) -> int:
        value = table.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise reader.fail(f"search.{key}", f"must be an integer >= {minimum}, got {value!r}")
        return value

    layers = table.get("network_layers", list(defaults.network_layers))
    if not (isinstance(layers, list) and layers and all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                                         for n in layers)):
        raise reader.fail("search.network_layers", f"must be a list of positive integers, got {layers!r}")
    f_live = reader.number(table, "search", "f_live", defaults.f_live)
    if f_live >= 1:
        raise reader.fail("search.f_live", f"must be < 1, got {f_live!r}")
    return SearchOptions(
        n_live=count("n_live", 2),
        n_batch=count("n_batch"),
        n_eff=reader.number(table, "search", "n_eff", defaults.n_eff),
        f_live=f_live,
        n_like_max=count("n_like_max") if "n_like_max" in table else None,
        n_networks=count("n_networks"),
        network_layers=tuple(layers),
        network_epochs=count("network_epochs"),
        discard_exploration=flag("discard_exploration"),
        seed=count("seed", 0),
        max_samples=count("max_samples"),
        checkpoint=flag("checkpoint"),
        eval_chunk=count("eval_chunk", 0) if "eval_chunk" in table else None,
    )
