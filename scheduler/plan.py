"""Planning a run: from a catalog and a fit config to the frozen dataset order, its shape buckets and blocks.

JAX-free (numpy, storage, and the engine's pure-Python buckets and model modules). Steps of `make_plan`:

1. Read every row's FITS headers (storage.datasets.read_shapes, on a thread pool so object stores are read
   concurrently; the readers touch no process-wide state): image shape, PSF shape, pixel scale, and the
   fingerprint of its files (storage.datasets.dataset_fingerprint). Evaluate mode also needs the row's
   parameters (search mode does not: the search finds them). Whatever goes wrong with one row is that row's
   outcome, never the run's (storage.errors.classify):
   - bad input — headers that cannot be read (missing, truncated, corrupted, compressed data that does not
     decompress), parameters that do not fit the model, a catalog mask_radius or pixel_scale that is not a
     finite number > 0, an image larger than [dataset] max_image_side — plans it INVALID with its reason
     (`DatasetSpec.error`), which the store records when its block commits;
   - any other failure (a transient read error, tried TRANSIENT_ATTEMPTS times; an environment problem; a bug)
     plans it without a bucket or a shape and without an error (`Plan.unread` says why): its block reads it
     again and classifies what happens then.
2. Bucket each dataset: `bucket_for_shapes` from its shapes, its files' mask, its mask radius and centre (the
   row's `mask_radius` / `mask_centre`, else a cutout's info.json ones, else the config's radius and (0, 0); as
   workers.datasets.mask_geometry resolves them when loading) and the config's over-sampling, rounded with
   `common_bucket([b])` — the static shapes its compiled program is keyed by. Datasets with equal rounded
   buckets share a shape bucket. Shapes that cannot be fitted (an even or oversized PSF, a mask that leaves no
   pixel) get no bucket (-1): the worker's validation gives the reason when it loads them.
3. Freeze the order: by bucket (buckets sorted by their sizes), then catalog order; datasets without a bucket
   last. This is the order of the store's dataset axis. Stored images are padded to `max_image_shape`: the
   largest planned image, or max_image_side square when some dataset's shape is unknown (it may be that big).
4. Cut blocks: block k is datasets [kB, (k+1)B) of that order, which is exactly chunk k of every store array, so
   one block is one writer's objects. A block lies within one bucket except where one bucket ends and the next
   begins; the worker evaluates each bucket's part of such a block separately, padded to B lenses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from storage.catalog import Catalog, CatalogEntry
from storage.datasets import ImagingShapes, dataset_fingerprint, read_shapes
from storage.errors import DatasetError, Fault, classify, retry_transient
from storage.schema import block_slice, n_blocks
from workers.contract import BucketSpec, DatasetSpec
from workers.config import FitConfig
from workers.model.buckets import Bucket, bucket_for_shapes, common_bucket
from workers.model.description import ParameterError, parameter_names, vector_from_params

HEADER_THREADS = 16


@dataclass(frozen=True)
class Plan:
    """A frozen run plan: datasets in store order, shape buckets, block
    size B, the model's parameter names, the largest image side the config allows, and the datasets whose
    headers could not be read for a reason other than bad input ((id, reason); see the module docstring)."""

    datasets: tuple[DatasetSpec, ...]
    buckets: tuple[BucketSpec, ...]
    block_size: int
    parameter_names: tuple[str, ...]
    max_image_side: int
    unread: tuple[tuple[str, str], ...] = ()

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.datasets]

    @property
    def n_blocks(self) -> int:
        return n_blocks(len(self.datasets), self.block_size)

    def block(self, k: int) -> slice:
        """Datasets of block k (the last block may be short)."""
        return block_slice(k, self.block_size, len(self.datasets))

    @property
    def max_image_shape(self) -> tuple[int, int]:
        """The padded shape of stored images: the largest image (ny, nx) of the datasets not planned INVALID (at
        least 1 × 1), or max_image_side × max_image_side if one of them has an unknown shape."""
        fitted = [d for d in self.datasets if not d.error]
        if any(d.image_shape == (0, 0) for d in fitted):
            return (self.max_image_side, self.max_image_side)
        return (max([1, *(d.image_shape[0] for d in fitted)]), max([1, *(d.image_shape[1] for d in fitted)]))

    @property
    def invalid(self) -> dict[str, str]:
        """Datasets planned INVALID: id -> reason."""
        return {d.id: d.error for d in self.datasets if d.error}

    def bucket_attrs(self) -> list[dict]:
        """The store attribute `shape_buckets` (a dataset's `shape_bucket` indexes it)."""
        return [b.to_dict() for b in self.buckets]

    def summary(self) -> str:
        sizes = [sum(d.bucket == i for d in self.datasets) for i in range(len(self.buckets))]
        unplanned = sum(d.bucket < 0 for d in self.datasets)
        parts = ", ".join(f"{b.bucket.canvas[0]}×{b.bucket.canvas[1]}: {n}" for b, n in zip(self.buckets, sizes))
        extra = f", {unplanned} without a bucket" if unplanned else ""
        unread = f", {len(self.unread)} to be read again by their blocks" if self.unread else ""
        return (
            f"{len(self.datasets)} datasets in {len(self.buckets)} shape buckets ({parts}{extra}), "
            f"{self.n_blocks} blocks of {self.block_size}; {len(self.invalid)} invalid at planning{unread}"
        )

    def in_store_order(self, ids: Sequence[str]) -> Plan:
        """The same plan with the datasets in the order of `ids` (a resumed store's dataset axis).

        The catalog and config are checked equal by the store, so the ids are the catalog's, but the planned
        order can differ from the store's if headers read differently this time (a missing file appeared);
        the store's order wins, and blocks keep meaning store chunks.
        """
        position = {dataset_id: i for i, dataset_id in enumerate(self.ids)}
        if sorted(position) != sorted(ids) or len(ids) != len(self.datasets):
            raise ValueError("the store's ids are not this plan's ids")
        return replace(self, datasets=tuple(self.datasets[position[dataset_id]] for dataset_id in ids))

    def with_stored_buckets(self, stored: Sequence[dict]) -> Plan:
        """The same plan with its buckets indexed as in a resumed store's `shape_buckets` attribute (what the
        committed datasets' `shape_bucket` refers to), new buckets appended after them."""
        merged = [BucketSpec.from_dict(d) for d in stored]
        known = {b.bucket: i for i, b in enumerate(merged)}
        for b in self.buckets:
            if b.bucket not in known:
                known[b.bucket] = len(merged)
                merged.append(b)
        remap = {i: known[b.bucket] for i, b in enumerate(self.buckets)}
        datasets = tuple(replace(d, bucket=remap[d.bucket]) if d.bucket >= 0 else d for d in self.datasets)
        return replace(self, datasets=datasets, buckets=tuple(merged))


def make_plan(
    catalog: Catalog,
    config: FitConfig,
    block_size: int,
    storage_options: dict | None = None,
    threads: int = HEADER_THREADS,
) -> Plan:
    """Plan a run (evaluate mode: each lens at its catalog row's parameters; search mode, when the config has
    a [search]: no parameters needed); see the module docstring."""
    if block_size < 1:
        raise ValueError(f"block size {block_size} must be >= 1")
    model = config.model
    names = parameter_names(model)
    entries = catalog.entries
    with ThreadPoolExecutor(max(1, min(threads, len(entries)))) as pool:
        reads = list(pool.map(lambda e: _read(e, storage_options), entries))

    planned: list[tuple[DatasetSpec, Bucket | None, ImagingShapes | None]] = []
    unread = []
    for entry, (found, fingerprint) in zip(entries, reads):
        error = _row_error(entry, catalog.path)
        radius, centre = entry.mask_radius, entry.mask_centre
        if not error and config.search is None:
            vectors, error = _vectors(entry, catalog.path, model, names)
        else:
            vectors = ()
        bucket = None
        if isinstance(found, _Unread):
            if found.invalid:
                error = error or found.reason
            else:
                unread.append((entry.id, found.reason))
            found = None
        else:
            radius = next(r for r in (radius, found.mask_radius, config.dataset.mask_radius) if r is not None)
            centre = next(c for c in (centre, found.mask_centre, (0.0, 0.0)) if c is not None)
            error = error or _size_error(entry, found, config.dataset.max_image_side)
            bucket = None if error else _bucket(found, radius, centre, config)
        spec = DatasetSpec(
            id=entry.id,
            path=entry.path,
            pixel_scale=entry.pixel_scale,
            mask_radius=radius,
            vectors=vectors,
            image_shape=found.image_shape if found is not None else (0, 0),
            error=error,
            fingerprint=fingerprint,
            mask_centre=centre,
            band=entry.band,
        )
        planned.append((spec, bucket, found))

    distinct = sorted({b for _, b, _ in planned if b is not None}, key=_sizes)
    index = {b: i for i, b in enumerate(distinct)}
    examples: dict[Bucket, BucketSpec] = {}
    for spec, bucket, found in planned:
        if bucket is not None and bucket not in examples:
            examples[bucket] = BucketSpec(bucket, found.image_shape, found.psf_shape, found.pixel_scale,
                                          spec.mask_radius, spec.mask_centre, found.masked_pixels)
    order = sorted(
        range(len(planned)),
        key=lambda i: (planned[i][1] is None, index.get(planned[i][1], 0), i),
    )
    datasets = tuple(
        replace(planned[i][0], bucket=index[planned[i][1]] if planned[i][1] is not None else -1) for i in order
    )
    return Plan(
        datasets=datasets,
        buckets=tuple(examples[b] for b in distinct),
        block_size=int(block_size),
        parameter_names=names,
        max_image_side=config.dataset.max_image_side,
        unread=tuple(unread),
    )


@dataclass(frozen=True)
class _Unread:
    """Why a row's headers could not be read; `invalid` when that is the input's fault."""

    reason: str
    invalid: bool


def _read(entry: CatalogEntry, storage_options: dict | None) -> tuple[ImagingShapes | _Unread, str]:
    """The row's shapes (or why not) and its files' fingerprint ("" when it could not be taken)."""
    try:
        shapes = retry_transient(lambda: read_shapes(entry.path, entry.id, entry.pixel_scale, storage_options,
                                                     entry.band))
    except Exception as e:  # one row's failure is never the run's: classified, see the module docstring
        fault = classify(e)
        shapes = _Unread(str(e) if fault is not Fault.ERROR else f"{type(e).__name__}: {e}", fault is Fault.BAD_INPUT)
    try:
        fingerprint = retry_transient(lambda: dataset_fingerprint(entry.path, entry.id, storage_options))
    except Exception:  # without one, a resume cannot tell whether this lens's files changed: it assumes not
        fingerprint = ""
    return shapes, fingerprint


def _row_error(entry: CatalogEntry, catalog: str) -> str:
    """Why the row's own numbers make it INVALID ("" when they do not)."""
    for name in ("mask_radius", "pixel_scale"):
        value = getattr(entry, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            return str(DatasetError(entry.id, catalog, f"catalog {name} {value!r} must be a finite number > 0 arcsec"))
    return ""


def _size_error(entry: CatalogEntry, shapes: ImagingShapes, max_side: int) -> str:
    """Why the image is too large for the run ("" when it is not)."""
    if max(shapes.image_shape) <= max_side:
        return ""
    reason = (f"image shape {shapes.image_shape} exceeds [dataset] max_image_side = {max_side} pixels (every "
              "block's image arrays are padded to the run's largest image); raise it in fit.toml to fit this lens")
    return str(DatasetError(entry.id, entry.path, reason))


def _vectors(entry: CatalogEntry, catalog: str, model, names) -> tuple[tuple[tuple[float, ...], ...], str]:
    """Evaluate mode: the row's one parameter vector, or the reason there is none."""
    if not entry.params:
        reason = f"no parameters in the catalog row; evaluate mode needs {', '.join(names)}"
        return (), str(DatasetError(entry.id, catalog, reason))
    try:
        vector = vector_from_params(model, entry.params)
    except ParameterError as e:
        return (), str(DatasetError(entry.id, catalog, f"catalog parameters: {e}"))
    if not all(math.isfinite(v) for v in vector):
        return (), str(DatasetError(entry.id, catalog, "catalog parameters are not all finite"))
    return (tuple(float(v) for v in vector),), ""


def _bucket(shapes: ImagingShapes, mask_radius: float, mask_centre: tuple[float, float],
            config: FitConfig) -> Bucket | None:
    """The rounded shape bucket of a dataset, or None when its shapes cannot be fitted."""
    (ny, nx), (ky, kx) = shapes.image_shape, shapes.psf_shape
    if ky % 2 == 0 or kx % 2 == 0 or ky > ny or kx > nx:
        return None
    try:
        exact = bucket_for_shapes(
            shapes.image_shape, shapes.psf_shape, shapes.pixel_scale, mask_radius,
            config.dataset.over_sample_size_lp, config.dataset.over_sample_size_pixelization, mask_centre,
            shapes.mask,
        )
    except (IndexError, ValueError):  # the mask leaves no pixel
        return None
    return common_bucket([exact])


def _sizes(b: Bucket) -> tuple[int, ...]:
    return (*b.canvas, *b.psf, b.pixels, b.lp_sub, b.pix_sub, b.blurring)
