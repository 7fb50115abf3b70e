"""Survey catalogs: one row per lens, read from ECSV (.ecsv), FITS table (.fits, .fit) or CSV (.csv).

Columns
- `id` (required): the dataset id used in the store, the logs and the CLI; unique and non-empty; text (a CSV's
  cells are read as written: `007` and `7` are two ids, `1e3` is not 1000.0).
- `path` (required): the lens's folder or multi-extension FITS file; relative to the catalog's folder, absolute,
  or a URL (s3://, gs://, https://).
- `pixel_scale`, `mask_radius` (optional, arcsec): an empty (masked) or NaN cell means "not given"; a value
  that is not > 0 and finite makes that row's lens INVALID (scheduler.plan), not the catalog.
- `mask_centre` (optional, arcsec): the circular mask's centre "y, x" (text, brackets allowed, or a 2-element
  array column); empty means "not given" (then a cutout's info.json, else (0, 0)).
- `band` (optional): the band of a Euclid cutout to fit (storage.euclid; VIS when empty); upper-cased.
- per-lens parameters (evaluate mode), either
  - `params`: a params.json file per row (relative to the catalog's folder, absolute or a URL), or
  - flattened columns: every column whose name holds a dot, named like params.json flattened with dots and an
    index suffix for vectors: `lens.mass.centre.0`, `lens.mass.centre.1`, `lens.mass.einstein_radius`,
    `lens.shear.gamma_1`, ... (`flatten_params` / `unflatten_params` are the one place that maps the two forms).
Other columns (ra, dec, redshifts, ...) are allowed and ignored.

`Catalog.hash` is the sha256 of the catalog file's bytes followed by the bytes of every params.json it references,
in row order; the store records it and refuses to resume a run with a different catalog.
"""

import hashlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.io.ascii import convert_numpy
from astropy.table import MaskedColumn, Table

from storage.errors import CatalogError
from storage.locations import filesystem, is_url, parent, resolve

REQUIRED_COLUMNS = ("id", "path")
FORMATS = {".ecsv": "ascii.ecsv", ".csv": "ascii.csv", ".fits": "fits", ".fit": "fits"}


@dataclass(frozen=True)
class CatalogEntry:
    """One lens: id, resolved path (absolute local path or URL), optional pixel scale, mask radius and mask
    centre (y, x) (arcsec), optional parameters as a nested dict in params.json form, optional cutout band."""

    id: str
    path: str
    pixel_scale: float | None = None
    mask_radius: float | None = None
    params: dict | None = None
    mask_centre: tuple[float, float] | None = None
    band: str | None = None


@dataclass(frozen=True)
class Catalog:
    """A survey catalog as read: its location, its entries in file order and its content hash (sha256 hex)."""

    path: str
    entries: tuple[CatalogEntry, ...]
    hash: str

    @property
    def ids(self) -> list[str]:
        return [entry.id for entry in self.entries]

    def __len__(self) -> int:
        return len(self.entries)


def read_catalog(path: str, storage_options: dict | None = None) -> Catalog:
    """Read and check a catalog; raise `CatalogError` naming the row and id at fault."""
    fmt = _format(path)
    fs, fs_path = filesystem(path, storage_options)
    try:
        raw = fs.cat_file(fs_path)
    except FileNotFoundError:
        raise CatalogError(path, "file not found") from None
    # CSV declares no types: every cell is read as text (so ids stay "007" and "1e3"; numbers are parsed below)
    text_columns = {"converters": {"*": [convert_numpy(str)]}} if fmt == "ascii.csv" else {}
    try:
        table = Table.read(io.BytesIO(raw) if fmt == "fits" else raw.decode().splitlines(), format=fmt, **text_columns)
    except Exception as e:  # astropy's readers raise many types for malformed input
        raise CatalogError(path, f"unreadable {fmt} table ({type(e).__name__}: {e})") from e

    missing = [c for c in REQUIRED_COLUMNS if c not in table.colnames]
    if missing:
        raise CatalogError(path, f"missing required column(s) {missing}; columns are {table.colnames}")
    if len(table) == 0:
        raise CatalogError(path, "no rows")
    flat_columns = [c for c in table.colnames if "." in c]
    if "params" in table.colnames and flat_columns:
        raise CatalogError(path, "give parameters either as a params column or as flattened columns, not both")

    base = parent(path)
    digest = hashlib.sha256(raw)
    entries, rows_of = [], {}
    for i, row in enumerate(table):
        where = f"row {i + 1}"
        dataset_id = _text(row["id"])
        if not dataset_id:
            raise CatalogError(path, f"{where}: empty id")
        if dataset_id in rows_of:
            raise CatalogError(path, f"duplicate id {dataset_id!r} in rows {rows_of[dataset_id]} and {i + 1}")
        rows_of[dataset_id] = i + 1
        where = f"row {i + 1} (id {dataset_id!r})"
        location = _text(row["path"])
        if not location:
            raise CatalogError(path, f"{where}: empty path")
        params = None
        if "params" in table.colnames and _text(row["params"]):
            params_file = resolve(base, _text(row["params"]))
            params_bytes = _read_params_file(params_file, storage_options, path, where)
            digest.update(params_bytes)
            params = _parse_params(params_bytes, path, f"{where}: {params_file}")
        elif flat_columns:
            flat = {c: _number(row, c, path, where) for c in flat_columns}
            flat = {c: v for c, v in flat.items() if v is not None}
            try:
                params = unflatten_params(flat) if flat else None
            except ValueError as e:
                raise CatalogError(path, f"{where}: {e}") from None
        entries.append(
            CatalogEntry(
                id=dataset_id,
                path=resolve(base, location),
                pixel_scale=_number(row, "pixel_scale", path, where),
                mask_radius=_number(row, "mask_radius", path, where),
                params=params,
                mask_centre=_centre(row, path, where),
                band=(_text(row["band"]).upper() or None) if "band" in table.colnames else None,
            )
        )
    return Catalog(path=path, entries=tuple(entries), hash=digest.hexdigest())


def write_catalog(path: str, entries: Sequence[CatalogEntry]) -> None:
    """Write entries as a catalog (format from the suffix) with flattened parameter columns.

    Local absolute paths inside the catalog's folder are written relative to it, so the survey folder can be
    moved; a relative path is already relative to the catalog's folder and is written as given.
    """
    fmt = _format(path)
    folder = parent(path)
    flats = [flatten_params(e.params) if e.params else {} for e in entries]
    param_names = sorted({name for flat in flats for name in flat})
    table = Table()
    table["id"] = [e.id for e in entries]
    table["path"] = [_relative(e.path, folder) for e in entries]
    for name in ("pixel_scale", "mask_radius"):
        values = [getattr(e, name) for e in entries]
        if any(v is not None for v in values):
            table[name] = _masked_floats(values)
    if any(e.mask_centre is not None for e in entries):
        table["mask_centre"] = ["" if e.mask_centre is None else f"{e.mask_centre[0]!r}, {e.mask_centre[1]!r}"
                                for e in entries]
    if any(e.band is not None for e in entries):
        table["band"] = [e.band or "" for e in entries]
    for name in param_names:
        table[name] = _masked_floats([flat.get(name) for flat in flats])
    table.write(path, format=fmt, overwrite=True)


def flatten_params(nested: Mapping) -> dict[str, float]:
    """{"lens": {"mass": {"centre": [y, x]}}} -> {"lens.mass.centre.0": y, "lens.mass.centre.1": x}."""
    flat: dict[str, float] = {}

    def walk(node, key: str) -> None:
        if isinstance(node, Mapping):
            children = [(str(k), v) for k, v in node.items()]
        elif isinstance(node, list | tuple):
            children = [(str(i), v) for i, v in enumerate(node)]
        else:
            try:
                flat[key] = float(node)
            except (TypeError, ValueError):
                raise ValueError(f"parameter {key!r} is not a number: {node!r}") from None
            return
        for name, child in children:
            walk(child, f"{key}.{name}" if key else name)

    walk(nested, "")
    return flat


def unflatten_params(flat: Mapping[str, float]) -> dict:
    """Inverse of `flatten_params`: dotted names to a nested dict; keys 0..n-1 at one level form a list."""
    tree: dict = {}
    for key, value in flat.items():
        *branch, leaf = key.split(".")
        if "" in branch or not leaf:
            raise ValueError(f"parameter name {key!r} has an empty part")
        node = tree
        for name in branch:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise ValueError(f"parameter {key!r} extends the value {'.'.join(branch)!r}")
        if leaf in node:
            raise ValueError(f"parameter {key!r} is both a value and a group")
        node[leaf] = value
    return _lists(tree, "")


def _lists(node, key: str):
    """Turn dicts keyed 0..n-1 into lists, recursively."""
    if not isinstance(node, dict):
        return node
    node = {name: _lists(child, f"{key}{name}.") for name, child in node.items()}
    indices = [name for name in node if name.isdigit()]
    if not indices:
        return node
    if len(indices) != len(node) or sorted(indices, key=int) != [str(i) for i in range(len(node))]:
        raise ValueError(f"parameter {key.rstrip('.')!r} has indices {sorted(node)}; expected 0..n-1 only")
    return [node[str(i)] for i in range(len(node))]


def _format(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise CatalogError(path, f"unknown catalog format {suffix!r}; use {', '.join(FORMATS)}")
    return FORMATS[suffix]


def _text(value) -> str:
    """A cell as stripped text; masked cells are empty."""
    if np.ma.is_masked(value):
        return ""
    if isinstance(value, bytes):
        value = value.decode()
    return str(value).strip()


def _number(row, column: str, catalog: str, where: str) -> float | None:
    """A numeric cell; None when the column is absent or the cell masked, empty or NaN."""
    if column not in row.colnames or not _text(row[column]):
        return None
    try:
        value = float(row[column])
    except (TypeError, ValueError):
        raise CatalogError(catalog, f"{where}: {column} {_text(row[column])!r} is not a number") from None
    return None if math.isnan(value) else value


def _centre(row, catalog: str, where: str) -> tuple[float, float] | None:
    """A mask_centre cell as (y, x); None when the column is absent or the cell empty."""
    if "mask_centre" not in row.colnames:
        return None
    cell = row["mask_centre"]
    if np.ndim(cell) == 1:
        parts = list(np.ma.filled(cell, np.nan))
    elif not _text(cell):
        return None
    else:
        parts = _text(cell).strip("[]()").split(",")
    try:
        centre = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        centre = ()
    if len(centre) != 2 or not all(math.isfinite(c) for c in centre):
        raise CatalogError(catalog, f"{where}: mask_centre {_text(cell)!r} is not 'y, x' in arcsec")
    return centre


def _read_params_file(location: str, storage_options: dict | None, catalog: str, where: str) -> bytes:
    fs, fs_path = filesystem(location, storage_options)
    try:
        return fs.cat_file(fs_path)
    except FileNotFoundError:
        raise CatalogError(catalog, f"{where}: params file {location} not found") from None


def _parse_params(raw: bytes, catalog: str, where: str) -> dict:
    try:
        params = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CatalogError(catalog, f"{where}: not valid JSON ({e})") from None
    if not isinstance(params, dict):
        raise CatalogError(catalog, f"{where}: expected a JSON object, found {type(params).__name__}")
    return params


def _relative(location: str, folder: str) -> str:
    """A local absolute path inside `folder` made relative to it; anything else (a URL, a path already relative
    to the catalog's folder, a path outside it) as given."""
    if is_url(location) or is_url(folder) or not os.path.isabs(location):
        return location
    relative = os.path.relpath(location, folder)
    return location if relative.startswith("..") else relative


def _masked_floats(values: Sequence[float | None]) -> MaskedColumn:
    return MaskedColumn(
        [np.nan if v is None else float(v) for v in values], dtype=np.float64, mask=[v is None for v in values]
    )
