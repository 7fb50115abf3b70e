"""Reading a result store from a notebook.

    from storage.reader import open_results

    results = open_results("results.zarr")        # or "s3://bucket/run.zarr", storage_options={...}
    table = results.table()                        # astropy Table, one row per lens, every per-lens scalar
    table[table["status"] == "DONE"]
    results.array("model_image")[42]               # a lazy Zarr array: this reads one chunk
    results.lens("J1234+5678")["reconstruction"]   # every array's row for one lens
    results.attrs["config"]                        # the run's metadata

Every array carries `dimension_names` ("dataset", then y, x, evaluation, parameter, linear_parameter, axis), so
xarray (not a lensfleet dependency) opens the store without help:

    import xarray as xr
    ds = xr.open_zarr("results.zarr", consolidated=False)
    ds.figure_of_merit.where(ds.status == 1).to_series()
"""

import numpy as np
import zarr
from astropy.table import Table

from storage.schema import TERMS, Status
from storage.store import ResultStore

_LEADING_COLUMNS = ("id", "status", "attempts", "error", "wall_time", "shape_bucket", *TERMS)


class Results:
    """A result store opened read-only."""

    def __init__(self, store: ResultStore):
        self.store = store
        self.attrs: dict = store.attrs

    def table(self) -> Table:
        """One row per lens: id, status name, attempts, error, wall_time, shape_bucket, every term, then every
        other per-lens scalar (reconstruction_size, ...), in that order."""
        scalars = [n for n in self.store.names if self.store.array(n).ndim == 1]
        names = [n for n in _LEADING_COLUMNS if n in scalars] + [n for n in scalars if n not in _LEADING_COLUMNS]
        table = Table(meta={"store": self.store.url})
        for name in names:
            values = self.store.read_array(name)
            if name == "status":
                values = np.array([s.name for s in Status])[values]
            elif values.dtype.kind == "T":
                values = np.array(values.tolist(), dtype=str)
            table[name] = values
        return table

    def array(self, name: str) -> zarr.Array:
        """The Zarr array `name`; index it to read only what you need."""
        return self.store.array(name)

    def lens(self, dataset_id: str) -> dict[str, np.ndarray | float | int | str]:
        """Every array's row for one lens: per-lens scalars as Python values (status as its name), the rest numpy."""
        ids = self.store.read_array("id")
        where = np.flatnonzero(ids == dataset_id)
        if where.size == 0:
            raise KeyError(f"no lens {dataset_id!r} in store {self.store.url}")
        i = int(where[0])
        row = {name: _value(self.store.array(name)[i]) for name in self.store.names}
        row["status"] = Status(int(row["status"])).name
        return row


def _value(row: np.ndarray):
    return row.item() if row.ndim == 0 else row


def open_results(url: str, storage_options: dict | None = None) -> Results:
    """Open a store for reading (no checks, no lease)."""
    return Results(ResultStore.open_existing(url, storage_options=storage_options))
