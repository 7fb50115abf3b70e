"""fit.toml: the run configuration, parsed and checked once (pure Python, no JAX).

    [dataset]      mask_radius (arcsec), over_sample_size_lp, over_sample_size_pixelization
                   (an integer, or {sub_sizes = [...], radii = [...]} for radial-bin adaptive over-sampling)
    [lens.mass]    type = "isothermal"
    [lens.shear]   present = ExternalShear on
    [lens.light]   optional: type = "mge", gaussians, sigma_min
    [source]       type = "mge", gaussians, sigma_min  |  type = "rectangular", shape = [ny, nx], regularization
    [settings]     the five Settings keys (PyAutoLens's names and defaults)

Every unknown key or wrong type is a ConfigError naming the file and the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
import tomllib
from typing import Any

from .inversion.grids import OverSampling, RadialOverSampling
from .inversion.model import MGEBasis, Model, RectangularSource
from .inversion.settings import Settings


class ConfigError(ValueError):
    """A problem in fit.toml, naming the file and the key."""


@dataclass(frozen=True)
class DatasetOptions:
    """How each dataset is masked and over-sampled."""

    mask_radius: float = 3.0
    over_sample_size_lp: OverSampling = 4
    over_sample_size_pixelization: OverSampling = 4


@dataclass(frozen=True)
class FitConfig:
    """The whole of fit.toml: dataset options and the lens model (with its Settings)."""

    dataset: DatasetOptions = field(default_factory=DatasetOptions)
    model: Model = field(default_factory=lambda: Model(source=MGEBasis()))
    origin: str = "<defaults>"

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict in fit.toml's structure (for the store's attributes)."""
        m = self.model
        lens: dict[str, Any] = {"mass": {"type": "isothermal"}}
        if m.shear:
            lens["shear"] = {}
        if m.lens_light is not None:
            lens["light"] = {"type": "mge", **asdict(m.lens_light)}
        if m.pixelized:
            source = {"type": "rectangular", "shape": list(m.source.shape), "regularization": m.source.regularization}
        else:
            source = {"type": "mge", **asdict(m.source)}
        return {
            "dataset": {k: _plain(v) for k, v in asdict(self.dataset).items()},
            "lens": lens,
            "source": source,
            "settings": asdict(m.settings),
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
    reader.keys(raw, "", {"dataset", "lens", "source", "settings"})
    dataset = _dataset(reader, raw.get("dataset", {}))
    lens = raw.get("lens", {})
    reader.keys(lens, "lens", {"mass", "shear", "light"})
    mass = lens.get("mass", {"type": "isothermal"})
    reader.keys(mass, "lens.mass", {"type"})
    if mass.get("type", "isothermal") != "isothermal":
        raise ConfigError(f"{where}: lens.mass.type: only \"isothermal\" is supported, got {mass['type']!r}")
    if "shear" in lens:
        reader.keys(lens["shear"], "lens.shear", set())
    light = _mge(reader, lens["light"], "lens.light") if "light" in lens else None
    source = _source(reader, raw.get("source", {"type": "mge"}))
    settings = _settings(reader, raw.get("settings", {}))
    model = Model(source=source, shear="shear" in lens, lens_light=light, settings=settings)
    return FitConfig(dataset=dataset, model=model, origin=where)


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


def _source(reader: _Reader, table: dict) -> MGEBasis | RectangularSource:
    kind = table.get("type", "mge") if isinstance(table, dict) else None
    if kind == "mge":
        return _mge(reader, table, "source")
    if kind == "rectangular":
        reader.keys(table, "source", {"type", "shape", "regularization"})
        shape = table.get("shape", [20, 20])
        if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(s, int) for s in shape)):
            raise reader.fail("source.shape", f"must be [ny, nx] integers, got {shape!r}")
        if min(shape) < 3:
            raise reader.fail("source.shape", f"a rectangular mesh needs at least 3×3 cells, got {shape}")
        return RectangularSource(shape=(shape[0], shape[1]), regularization=reader.number(table, "source", "regularization", 1.0))
    raise reader.fail("source.type", f"must be \"mge\" or \"rectangular\", got {kind!r}")


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
