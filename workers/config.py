"""fit.toml: the run configuration, parsed and checked once (pure Python, no JAX).

    [dataset]      mask_radius (arcsec), over_sample_size_lp, over_sample_size_pixelization
                   (an integer, or {sub_sizes = [...], radii = [...]} for radial-bin adaptive over-sampling)
    [lens.mass]    type = a name in MASS_PROFILES ("isothermal", "power_law")
    [lens.shear]   present = ExternalShear on
    [lens.light]   optional: type = "mge", gaussians, sigma_min
    [source]       type = "mge", gaussians, sigma_min  |  type = "rectangular", shape = [ny, nx], regularization
                   (the Constant coefficient; "free": Constant, searched as source.regularization.coefficient;
                   "adapt": reg.Adapt, searched as its inner_coefficient, outer_coefficient, signal_scale),
                   mesh = a name in MESHES ("uniform", "bilinear_adapt_density", "rtu_adapt_density",
                   "bilinear_adapt_image", "rtu_adapt_image"; the adaptive ones square; the *_adapt_image ones
                   in a later stage only, with weight_power (1.0) and weight_floor (0.0))
    [settings]     the five Settings keys (PyAutoLens's names and defaults)
    [priors]       optional: "flattened.parameter.name" = { type = "uniform" | "log_uniform" | "gaussian" |
                   "truncated_gaussian", lower, upper, mean, sigma as the type needs } (workers/priors.py: types
                   and survey defaults)
    [search]       optional, turns evaluate mode into search mode: type = "nautilus" (default: n_live, n_batch,
                   n_eff, f_live, n_like_max, n_networks, network_layers, network_epochs, discard_exploration,
                   checkpoint) or "gradient" (multi-start optimisation + importance-sampled Laplace posterior,
                   workers/gradient_search.py: screen, lensing_screen, starts, steps, optimizer, learning_rate,
                   posterior_samples, mode_tolerance); either with seed, max_samples, eval_chunk (SearchOptions:
                   meanings, defaults)
    stage          optional top-level key: the first stage's name (default "source_lp")
    [[stages]]     optional, later pipeline stages: name, lens, source, search, priors, fixed, positions
                   (workers/pipeline.py)

Every unknown key, wrong type or value out of range is a ConfigError naming the file, the key and the range, before
any work starts: every number must be finite, and sizes that set memory are bounded (LIMITS: a block holds B lenses
of each, so one absurd value would otherwise surface as an out-of-memory error, or every lens FAILED, hours later).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
import tomllib
from typing import Any

from .model.grids import OverSampling, RadialOverSampling
from .model.description import (
    MASS_PROFILES, MESHES, REGULARIZATION_PARAMETERS, MGEBasis, Model, RectangularSource, parameter_names,
)
from .model.settings import Settings
from .options import (GRADIENT_KEYS, LIMITS, NAUTILUS_KEYS, OPTIMIZERS, SEARCH_TYPES, ConfigError, DatasetOptions,
                      SearchOptions)
from .pipeline import FIRST_STAGE, STAGE_NAME, Positions, Stage
from .priors import Prior, prior_from_dict, prior_to_dict


@dataclass(frozen=True)
class FitConfig:
    """The whole of fit.toml: dataset options, the first stage's lens model (with its Settings), prior overrides
    (name → prior; survey defaults for the rest, see workers/priors.py) and search (None: evaluate mode), its
    name, and the later pipeline stages (workers/pipeline.py)."""

    dataset: DatasetOptions = field(default_factory=DatasetOptions)
    model: Model = field(default_factory=lambda: Model(source=MGEBasis()))
    origin: str = "<defaults>"
    priors: dict[str, Prior] = field(default_factory=dict, hash=False)
    search: SearchOptions | None = None
    stage: str = FIRST_STAGE
    stages: tuple[Stage, ...] = ()

    @property
    def pipeline(self) -> tuple[Stage, ...]:
        """Every stage in order, the first (the top level, stored at the root) included."""
        return (Stage(self.stage, self.model, self.search, self.priors), *self.stages)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict in fit.toml's structure (for the store's attributes)."""
        out = {
            "dataset": {k: _plain(v) for k, v in asdict(self.dataset).items()},
            "lens": _lens_dict(self.model),
            "source": _source_dict(self.model.source),
            "settings": asdict(self.model.settings),
        }
        if self.priors:
            out["priors"] = {name: prior_to_dict(prior) for name, prior in self.priors.items()}
        if self.search is not None:
            out["search"] = self.search.to_dict()
        if self.stages:
            out["stage"] = self.stage
            out["stages"] = [_stage_dict(stage) for stage in self.stages]
        return out


def _lens_dict(m: Model) -> dict[str, Any]:
    lens: dict[str, Any] = {"mass": {"type": m.mass.name}}
    if m.shear:
        lens["shear"] = {}
    if m.lens_light is not None:
        lens["light"] = {"type": "mge", **asdict(m.lens_light)}
    return lens


def _source_dict(source: MGEBasis | RectangularSource) -> dict[str, Any]:
    """fit.toml's [source] table of a source."""
    if isinstance(source, RectangularSource):
        table = {"type": "rectangular", "shape": list(source.shape), "mesh": source.mesh,
                 "regularization": source.regularization}
        if source.adapts_to_image:
            table.update(weight_power=source.weight_power, weight_floor=source.weight_floor)
        return table
    return {"type": "mge", **asdict(source)}


def _stage_dict(stage: Stage) -> dict[str, Any]:
    """A later stage in full (its whole model, not the changes its table listed), so two configs compare."""
    return {
        "name": stage.name, "lens": _lens_dict(stage.model), "source": _source_dict(stage.model.source),
        "search": stage.search.to_dict() if stage.search is not None else False,
        "priors": {name: prior_to_dict(prior) for name, prior in stage.priors.items()},
        "fixed": list(stage.fixed),
        "positions": asdict(stage.positions) if stage.positions is not None else False,
    }


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
    reader.keys(raw, "", {"dataset", "lens", "source", "settings", "priors", "search", "stage", "stages"})
    dataset = _dataset(reader, raw.get("dataset", {}))
    base = Model(source=MGEBasis(), settings=_settings(reader, raw.get("settings", {})), shear=False)
    model = _lens(reader, raw.get("lens", {}), "lens", replace(base, source=_source(reader, raw.get("source", {}))))
    priors = _priors(reader, raw.get("priors", {}), model)
    search = _search(reader, raw["search"]) if "search" in raw else None
    name = raw.get("stage", FIRST_STAGE)
    if not isinstance(name, str) or not STAGE_NAME.match(name):
        raise reader.fail("stage", f"must be a name of a-z, 0-9 and _ (starting with a letter), got {name!r}")
    _check_gradients(reader, search, model, "search")
    if getattr(model.source, "adapts_to_image", False):
        raise reader.fail("source.mesh", f"the {model.source.mesh!r} mesh follows the adapt image of the stage "
                          "before it; the first stage has none (use it in a [[stages]] table)")
    stages: list[Stage] = []
    previous = Stage(name, model, search, priors)
    tables = raw.get("stages", [])
    if not isinstance(tables, list):
        raise reader.fail("stages", "must be an array of tables ([[stages]])")
    for i, table in enumerate(tables):
        previous = _stage(reader, table, f"stages[{i}]", previous, [name, *(s.name for s in stages)])
        stages.append(previous)
    return FitConfig(dataset=dataset, model=model, origin=where, priors=priors, search=search, stage=name,
                     stages=tuple(stages))


def _check_gradients(reader: _Reader, search: SearchOptions | None, model: Model, prefix: str) -> None:
    """A gradient search needs the figure of merit's gradient, which the rank-CDF mesh does not have: it places
    each traced sub-pixel by its rank among the traced pixel centres, so the figure of merit is piecewise constant
    in the lens model (gradient 0 without over-sampling; with it, its smooth part only)."""
    mesh = getattr(model.source, "mesh", "")
    if search is not None and search.type == "gradient" and mesh.startswith("bilinear_"):
        raise reader.fail(f"{prefix}.type", f"a gradient search cannot follow the gradient of a {mesh!r} mesh (it "
                          "places the traced points by rank: the figure of merit is piecewise constant in the lens "
                          "model); use an 'rtu_' mesh or 'uniform', or a nautilus search")


def _lens(reader: _Reader, lens: Any, prefix: str, model: Model, changes: bool = False) -> Model:
    """`model` with the lens components of a [lens] table: every component for the first stage; for a later
    stage (`changes`) only those named, and `shear = false` / `light = false` remove one."""
    reader.keys(lens, prefix, {"mass", "shear", "light"})
    if "mass" in lens or not changes:
        mass = lens.get("mass", {})
        reader.keys(mass, f"{prefix}.mass", {"type"})
        kind = mass.get("type", "isothermal")
        if kind not in MASS_PROFILES:
            raise reader.fail(f"{prefix}.mass.type", f"must be one of {sorted(MASS_PROFILES)}, got {kind!r}")
        model = replace(model, mass=MASS_PROFILES[kind]())
    if "shear" in lens or not changes:
        shear = lens.get("shear", False)
        if shear is not False:
            reader.keys(shear, f"{prefix}.shear", set())
        model = replace(model, shear=shear is not False)
    if "light" in lens or not changes:
        light = lens.get("light", False)
        model = replace(model, lens_light=None if light is False else _mge(reader, light, f"{prefix}.light"))
    return model


def _stage(reader: _Reader, table: Any, prefix: str, previous: Stage, taken: list[str]) -> Stage:
    """A later stage from its [[stages]] table: what changes from `previous` (workers/pipeline.py)."""
    reader.keys(table, prefix, {"name", "lens", "source", "search", "priors", "fixed", "positions"})
    name = table.get("name")
    if not isinstance(name, str) or not STAGE_NAME.match(name):
        raise reader.fail(f"{prefix}.name", f"needs a name of a-z, 0-9 and _ (starting with a letter), got {name!r}")
    if name in taken:
        raise reader.fail(f"{prefix}.name", f"{name!r} is the name of an earlier stage")
    if previous.search is None:
        raise reader.fail(prefix, f"stage {name!r} starts from the stage before it, which has no search; add a "
                          "[search] to the first stage")
    model = _lens(reader, table.get("lens", {}), f"{prefix}.lens", previous.model, changes=True)
    if "source" in table:
        model = replace(model, source=_source(reader, table["source"], f"{prefix}.source"))
    search_table = table.get("search", {})
    if search_table is False:
        search = None
    elif isinstance(search_table, dict):  # a stage that changes the type carries over only the shared keys
        carried = previous.search.to_dict()
        if search_table.get("type", carried["type"]) != carried["type"]:
            carried = {k: v for k, v in carried.items() if k not in NAUTILUS_KEYS + GRADIENT_KEYS + ("type",)}
        search = _search(reader, {**carried, **search_table})
    else:
        raise reader.fail(f"{prefix}.search", f"must be a table of [search] keys or false, got {search_table!r}")
    _check_gradients(reader, search, model, f"{prefix}.search")
    priors = _priors(reader, table.get("priors", {}), model)
    fixed = table.get("fixed", [])
    names, before = parameter_names(model), set(parameter_names(previous.model))
    if not isinstance(fixed, list) or not all(isinstance(f, str) for f in fixed):
        raise reader.fail(f"{prefix}.fixed", f"must be a list of parameter names or paths, got {fixed!r}")
    stage = Stage(name, model, search, priors, tuple(fixed), group=name,
                  positions=_positions(reader, table.get("positions", False), f"{prefix}.positions"))
    for path in fixed:
        held = [n for n in names if n == path or n.startswith(path + ".")]
        if not held or any(n not in before for n in held):
            raise reader.fail(f"{prefix}.fixed", f"{path!r} is not a parameter of both this stage and the one "
                              f"before (parameters: {', '.join(names)})")
    if search is None and (priors or set(names) - before):
        raise reader.fail(f"{prefix}.search", "a stage without a search is evaluated at the previous stage's "
                          "maximum likelihood: it can add no parameter and take no priors")
    return stage


def _positions(reader: _Reader, table: Any, prefix: str) -> Positions | None:
    """A stage's positions likelihood: false (none) or { factor, minimum_threshold } (workers/pipeline.py)."""
    if table is False:
        return None
    reader.keys(table, prefix, {"factor", "minimum_threshold"})
    positions = Positions(**table)
    for key, value in asdict(positions).items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or not math.isfinite(value):
            raise reader.fail(f"{prefix}.{key}", f"must be a number ≥ 0, got {value!r}")
    return positions


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

    def number(self, table: dict, prefix: str, key: str, default: float, **bounds) -> float:
        """table[key] (else `default`) checked by `check_number`."""
        return self.check_number(f"{prefix}.{key}", table.get(key, default), **bounds)

    def integer(self, table: dict, prefix: str, key: str, default: int, low: int = 1, high: int | None = None) -> int:
        """table[key] (else `default`) checked by `check_integer`."""
        return self.check_integer(f"{prefix}.{key}", table.get(key, default), low, high)

    def check_number(self, name: str, value: Any, low: float = 0.0, high: float = math.inf,
                     open_low: bool = True) -> float:
        """A finite number in (low, high] (`open_low`) or [low, high]."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, got {value!r}")
        if not math.isfinite(value):
            raise self.fail(name, f"must be a finite number, got {value!r}")
        if value < low or (open_low and value == low) or value > high:
            bound = (f"> {low:g}" if open_low else f">= {low:g}") + (f" and <= {high:g}" if high < math.inf else "")
            raise self.fail(name, f"must be {bound}, got {value!r}")
        return float(value)

    def check_integer(self, name: str, value: Any, low: int = 1, high: int | None = None) -> int:
        """An integer in [low, high]."""
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            bound = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
            raise self.fail(name, f"must be {bound}, got {value!r}")
        return value


def _over_sampling(reader: _Reader, table: dict, key: str, default: int) -> OverSampling:
    value = table.get(key, default)
    name = f"dataset.{key}"
    if isinstance(value, dict):
        reader.keys(value, name, {"sub_sizes", "radii", "centres"})
        sizes, radii = value.get("sub_sizes"), value.get("radii")
        if not isinstance(sizes, list) or not isinstance(radii, list) or not sizes or not radii or (
                len(sizes) != len(radii) + 1 and len(sizes) != len(radii)):
            raise reader.fail(name, "needs sub_sizes = [...] and radii = [...] (one size per radius, or one more)")
        sizes = [reader.check_integer(f"{name}.sub_sizes", s, 1, LIMITS["sub_size"]) for s in sizes]
        radii = [reader.check_number(f"{name}.radii", r) for r in radii]
        if any(b <= a for a, b in zip(radii, radii[1:])):
            raise reader.fail(f"{name}.radii", f"must increase, got {radii}")
        centres = value.get("centres", [[0.0, 0.0]])
        if not isinstance(centres, list) or not all(isinstance(c, list) and len(c) == 2 for c in centres):
            raise reader.fail(f"{name}.centres", f"must be a list of [y, x] pairs, got {centres!r}")
        centres = tuple(tuple(reader.check_number(f"{name}.centres", c, -math.inf) for c in pair)
                        for pair in centres)
        return RadialOverSampling(tuple(sizes), tuple(radii), centres)
    return reader.integer(table, "dataset", key, default, 1, LIMITS["sub_size"])


def _dataset(reader: _Reader, table: dict) -> DatasetOptions:
    reader.keys(table, "dataset", {"mask_radius", "over_sample_size_lp", "over_sample_size_pixelization",
                                   "max_image_side"})
    defaults = DatasetOptions()
    return DatasetOptions(
        mask_radius=reader.number(table, "dataset", "mask_radius", defaults.mask_radius),
        over_sample_size_lp=_over_sampling(reader, table, "over_sample_size_lp", 4),
        over_sample_size_pixelization=_over_sampling(reader, table, "over_sample_size_pixelization", 4),
        max_image_side=reader.integer(table, "dataset", "max_image_side", defaults.max_image_side, 8,
                                      LIMITS["max_image_side"]),
    )


def _mge(reader: _Reader, table: dict, prefix: str) -> MGEBasis:
    reader.keys(table, prefix, {"type", "gaussians", "sigma_min", "bases"})
    if table.get("type", "mge") != "mge":
        raise reader.fail(f"{prefix}.type", f"must be \"mge\", got {table['type']!r}")
    return MGEBasis(
        gaussians=reader.integer(table, prefix, "gaussians", MGEBasis.gaussians, 1, LIMITS["gaussians"]),
        sigma_min=reader.number(table, prefix, "sigma_min", MGEBasis.sigma_min),
        bases=reader.integer(table, prefix, "bases", MGEBasis.bases, 1, LIMITS["bases"]),
    )


def _source(reader: _Reader, table: Any, prefix: str = "source") -> MGEBasis | RectangularSource:
    kind = table.get("type", "mge") if isinstance(table, dict) else None
    if kind == "mge":
        return _mge(reader, table, prefix)
    if kind == "rectangular":
        reader.keys(table, prefix, {"type", "shape", "regularization", "mesh", "weight_power", "weight_floor"})
        shape = table.get("shape", [20, 20])
        if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(s, int) for s in shape)):
            raise reader.fail(f"{prefix}.shape", f"must be [ny, nx] integers, got {shape!r}")
        if min(shape) < 3:
            raise reader.fail(f"{prefix}.shape", f"a rectangular mesh needs at least 3×3 cells, got {shape}")
        if shape[0] * shape[1] > LIMITS["mesh_cells"]:
            raise reader.fail(f"{prefix}.shape", f"a rectangular mesh has at most {LIMITS['mesh_cells']} cells (its "
                              f"curvature matrix is cells² × 8 bytes per lens), got {shape[0]}×{shape[1]}")
        mesh = table.get("mesh", "uniform")
        if mesh not in MESHES:
            raise reader.fail(f"{prefix}.mesh", f"must be one of {', '.join(MESHES)}, got {mesh!r}")
        if mesh != "uniform" and shape[0] != shape[1]:
            raise reader.fail(f"{prefix}.shape", f"the {mesh} mesh is square (ny = nx), got {shape}")
        if not mesh.endswith("_adapt_image") and {"weight_power", "weight_floor"} & set(table):
            raise reader.fail(f"{prefix}.mesh", f"weight_power and weight_floor belong to the *_adapt_image meshes, "
                              f"not {mesh!r}")
        regularization = table.get("regularization", 1.0)
        if isinstance(regularization, str):
            if regularization not in REGULARIZATION_PARAMETERS:
                raise reader.fail(f"{prefix}.regularization", f"must be a number, \"free\" or \"adapt\", got "
                                  f"{regularization!r}")
            if regularization == "adapt" and not mesh.endswith("_adapt_image"):
                raise reader.fail(f"{prefix}.regularization", f"\"adapt\" follows the adapt image: it needs an "
                                  f"*_adapt_image mesh, not {mesh!r}")
        else:
            regularization = reader.number(table, prefix, "regularization", 1.0)
        return RectangularSource(
            shape=(shape[0], shape[1]), mesh=mesh,
            regularization=regularization,
            weight_power=reader.number(table, prefix, "weight_power", 1.0),
            weight_floor=reader.number(table, prefix, "weight_floor", 0.0, open_low=False),
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
    kind = table.get("type", "nautilus")
    if kind not in SEARCH_TYPES:
        raise reader.fail("search.type", f"must be one of {', '.join(map(repr, SEARCH_TYPES))}, got {kind!r}")
    for key in set(table) & set(GRADIENT_KEYS if kind == "nautilus" else NAUTILUS_KEYS):
        raise reader.fail(f"search.{key}", f"is not an option of a {kind} search (see SearchOptions)")

    def flag(key: str) -> bool:
        value = table.get(key, getattr(defaults, key))
        if not isinstance(value, bool):
            raise reader.fail(f"search.{key}", f"must be true or false, got {value!r}")
        return value

    def count(key: str, minimum: int = 1) -> int:
        return reader.integer(table, "search", key, getattr(defaults, key), minimum, LIMITS.get(key))

    layers = table.get("network_layers", list(defaults.network_layers))
    if not (isinstance(layers, list) and 0 < len(layers) <= LIMITS["network_layers"] and all(
            isinstance(n, int) and not isinstance(n, bool) and 0 < n <= LIMITS["network_layer"] for n in layers)):
        raise reader.fail("search.network_layers", f"must be a list of positive integers (at most "
                          f"{LIMITS['network_layers']}, each <= {LIMITS['network_layer']}), got {layers!r}")
    f_live = reader.number(table, "search", "f_live", defaults.f_live)
    if f_live >= 1:
        raise reader.fail("search.f_live", f"must be < 1, got {f_live!r}")
    optimizer = table.get("optimizer", defaults.optimizer)
    if optimizer not in OPTIMIZERS:
        raise reader.fail("search.optimizer", f"must be one of {', '.join(map(repr, OPTIMIZERS))}, got {optimizer!r}")
    screen, starts = count("screen", 0), count("starts")
    if 0 < screen < starts:
        raise reader.fail("search.screen", f"must be 0 or at least starts ({starts}), got {screen}")
    return SearchOptions(
        type=kind,
        n_live=count("n_live", 2),
        n_batch=count("n_batch"),
        n_eff=reader.number(table, "search", "n_eff", defaults.n_eff, high=LIMITS["n_eff"]),
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
        screen=screen,
        lensing_screen=flag("lensing_screen"),
        starts=starts,
        steps=count("steps"),
        optimizer=optimizer,
        learning_rate=reader.number(table, "search", "learning_rate", defaults.learning_rate, high=100.0),
        posterior_samples=count("posterior_samples", 10),
        mode_tolerance=reader.number(table, "search", "mode_tolerance", defaults.mode_tolerance),
    )
