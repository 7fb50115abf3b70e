"""What the driver hands an actor: small, JAX-free, picklable descriptions of a run (the driver↔actor contract).

A `RunSpec` holds the store, the fit config, one `DatasetSpec` per dataset in store order and one `BucketSpec`
per shape bucket. The driver (scheduler.plan) builds them from the catalog's FITS headers; the actor
(workers.block) reads them. Blocks are `storage.schema.block_slice` of the dataset axis, for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from storage.schema import block_slice, n_blocks
from workers.config import FitConfig
from workers.model.buckets import Bucket
from workers.model.grids import circular_mask


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset as the driver planned it: catalog id and resolved path, catalog pixel scale (None: from the
    header) and effective mask radius (arcsec), its parameter vectors (V, n) in model order (empty when the
    catalog row had none), the index of its shape bucket in `RunSpec.buckets` (-1: the headers could not be
    read or the shapes cannot be bucketed), its image shape from the headers ((0, 0) unknown), `error`, the
    reason it is INVALID when planning already knows it ("" otherwise), and `fingerprint`, the digest of its
    files' sizes and versions at planning (storage.datasets.read_shapes; "" when they could not be read), which
    its block records in the store's `input_fingerprint` so that a resume can tell a replaced file. mask_radius
    and mask_centre (y, x arcsec) are the catalog's, else the cutout's info.json ones (else the config's radius
    and (0, 0)) when planning read the headers, the catalog's alone (None: resolved when loaded) when it could
    not; band is the catalog's cutout band (None: the layout's default)."""

    id: str
    path: str
    pixel_scale: float | None
    mask_radius: float | None
    vectors: tuple[tuple[float, ...], ...]
    bucket: int = -1
    image_shape: tuple[int, int] = (0, 0)
    error: str = ""
    fingerprint: str = ""
    mask_centre: tuple[float, float] | None = None
    band: str | None = None


@dataclass(frozen=True)
class BucketSpec:
    """A shape bucket of the run (the rounded bucket every compiled call of it uses), with the shapes, pixel
    scale, mask radius and centre and the files' masked pixels (flat indices) of one of its datasets so a
    worker can build a warm-up dataset of its exact bucket without reading it."""

    bucket: Bucket
    image_shape: tuple[int, int]
    psf_shape: tuple[int, int]
    pixel_scale: float
    mask_radius: float
    mask_centre: tuple[float, float] = (0.0, 0.0)
    masked_pixels: tuple[int, ...] = ()

    def mask(self) -> np.ndarray:
        """The example dataset's fit mask (True = masked): its circle and its files' masked pixels."""
        mask = circular_mask(self.image_shape, self.pixel_scale, self.mask_radius, self.mask_centre)
        mask.flat[list(self.masked_pixels)] = True
        return mask

    @classmethod
    def from_dict(cls, d: dict) -> BucketSpec:
        """Inverse of `to_dict` (a store written before mask centres and file masks: (0, 0) and none)."""
        bucket = Bucket(tuple(d["canvas"]), tuple(d["psf"]), d["pixels"], d["lp_sub"], d["pix_sub"], d["blurring"])
        e = d["example"]
        return cls(bucket, tuple(e["image_shape"]), tuple(e["psf_shape"]), e["pixel_scale"], e["mask_radius"],
                   tuple(e.get("mask_centre", (0.0, 0.0))), tuple(e.get("masked_pixels", ())))

    def to_dict(self) -> dict:
        """The store attribute form: the bucket's sizes and the example dataset's shapes."""
        b = self.bucket
        return {
            "canvas": list(b.canvas), "psf": list(b.psf), "pixels": b.pixels, "lp_sub": b.lp_sub,
            "pix_sub": b.pix_sub, "blurring": b.blurring,
            "example": {"image_shape": list(self.image_shape), "psf_shape": list(self.psf_shape),
                        "pixel_scale": self.pixel_scale, "mask_radius": self.mask_radius,
                        "mask_centre": list(self.mask_centre), "masked_pixels": list(self.masked_pixels)},
        }


@dataclass(frozen=True)
class RunSpec:
    """Everything an actor needs for a run: the store (URL, fsspec options), the fit config, the datasets in
    store order, the buckets, the block size B (store chunk and compiled batch of lenses), which driver run this
    is (`driver_run`, 1 for the run that created the store), the JAX persistent compilation cache folder (None:
    `default_compile_cache()` on the actor's node) and `fence`, the driver's lease token, with which every
    commit is fenced (ResultStore.write_block refuses it once that lease is gone). Result shapes come from the
    store's arrays."""

    store: str
    config: FitConfig
    datasets: tuple[DatasetSpec, ...]
    buckets: tuple[BucketSpec, ...]
    block_size: int
    driver_run: int = 1
    compile_cache: str | None = None
    fence: str | None = None
    storage_options: dict | None = field(default=None, hash=False)

    @property
    def n_blocks(self) -> int:
        return n_blocks(len(self.datasets), self.block_size)

    def block(self, k: int) -> slice:
        """Datasets of block k, as a slice of the store's dataset axis (the last block may be short)."""
        return block_slice(k, self.block_size, len(self.datasets))

