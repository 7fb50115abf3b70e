"""A catalog of good lenses and lenses broken in the ways surveys break, written as real FITS files (no JAX).

Good lenses are random images of two sizes (two shape buckets) with a normalised 5×5 PSF at 0.1″. Each broken
lens has one broken file; `BROKEN` says which file and what its reason must say.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from storage.catalog import CatalogEntry, write_catalog
from storage.datasets import write_imaging, write_imaging_mef

PARAMS = {
    "lens": {"mass": {"centre": [0.0, 0.0], "ell_comps": [0.05, 0.0], "einstein_radius": 1.0},
             "shear": {"gamma_1": 0.0, "gamma_2": 0.01}},
    "source": {"centre": [0.1, 0.0], "ell_comps": [0.0, 0.1]},
}
PIXEL_SCALE = 0.1
# id -> (the broken file, relative to the lens's folder or its MEF file "", a phrase of its reason)
BROKEN = {
    "T-psf": ("psf.fits", "truncated or unreadable FITS file (truncated"),
    "T-image": ("image.fits", "truncated or unreadable FITS file (truncated"),
    "G-psf": ("psf.fits", "truncated or unreadable FITS file"),
    "Z-image": ("image.fits", "truncated or unreadable FITS file (corrupted gzip data"),
    "M-file": ("", "truncated or unreadable FITS file (truncated"),
}


def arrays(seed: int, shape: tuple[int, int]) -> dict:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:5, :5] - 2.0
    psf = np.exp(-(x**2 + y**2) / 2)
    return {"image": rng.normal(1.0, 0.1, shape), "noise_map": np.full(shape, 0.1) + rng.uniform(0, 0.01, shape),
            "psf": psf / psf.sum()}


def write_good(folder: Path, seed: int) -> tuple[int, int]:
    """A good lens (40×40 for odd seeds, 30×30 for even ones); its image shape."""
    shape = (40, 40) if seed % 2 else (30, 30)
    a = arrays(seed, shape)
    write_imaging(str(folder), a["image"], a["noise_map"], a["psf"], PIXEL_SCALE)
    return shape


def write_broken(root: Path, dataset_id: str) -> str:
    """Write broken lens `dataset_id` under root; its catalog path."""
    folder = root / dataset_id
    a = arrays(len(dataset_id), (40, 40))
    if dataset_id == "M-file":
        file = root / f"{dataset_id}.fits"
        write_imaging_mef(str(file), a["image"], a["noise_map"], a["psf"], PIXEL_SCALE)
        file.write_bytes(file.read_bytes()[:5000])
        return str(file)
    write_imaging(str(folder), a["image"], a["noise_map"], a["psf"], PIXEL_SCALE)
    name = BROKEN[dataset_id][0]
    target = folder / name
    raw = target.read_bytes()
    if dataset_id.startswith("T-"):
        target.write_bytes(raw[:3000])  # the header survives, the data does not
    elif dataset_id == "G-psf":
        target.write_bytes(b"this is not a FITS file " * 200)
    elif dataset_id == "Z-image":
        packed = bytearray(gzip.compress(raw))
        for i in range(20, 40):  # corrupt the deflate stream near its start
            packed[i] ^= 0x5A
        target.write_bytes(bytes(packed))
    return str(folder)


def write_mixed_catalog(root: Path, n_good: int = 24, broken: tuple[str, ...] = tuple(BROKEN)
                        ) -> tuple[str, dict[str, tuple[int, int]]]:
    """root/catalog.ecsv listing n_good good lenses and the `broken` ones, interleaved; (catalog, {good id: its
    image shape})."""
    entries, good = [], {}
    broken = iter(broken)
    for i in range(n_good):
        dataset_id = f"A{i // 4}-{i % 4}"
        good[dataset_id] = write_good(root / dataset_id, i)
        entries.append(CatalogEntry(dataset_id, str(root / dataset_id), params=PARAMS))
        if i % 5 == 2 and (bad := next(broken, None)):
            entries.append(CatalogEntry(bad, write_broken(root, bad), params=PARAMS))
    for bad in broken:
        entries.append(CatalogEntry(bad, write_broken(root, bad), params=PARAMS))
    catalog = str(root / "catalog.ecsv")
    write_catalog(catalog, entries)
    return catalog, good
