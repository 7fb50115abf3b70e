"""The exceptions of storage: one type per kind of refusal.

- `DatasetError`: one lens's files are missing, unreadable or invalid. The run goes on; the dataset is marked
  INVALID with `str(error)` as its reason.
- `CatalogError`: the survey catalog itself is unusable (missing column, empty or duplicate id). Nothing starts.
- `StoreError`: the result store refuses (another driver holds it, it belongs to another config or catalog).
"""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class DatasetError(Exception):
    """A dataset failed to load or validate; `str()` reads "dataset ID: FILE: REASON" on one line."""

    def __init__(self, dataset_id: str, path: str, reason: str):
        self.dataset_id = dataset_id
        self.path = path
        self.reason = _one_line(reason)
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"dataset {self.dataset_id}: {self.path}: {self.reason}"

    def __reduce__(self):
        return type(self), (self.dataset_id, self.path, self.reason)


class CatalogError(Exception):
    """The catalog cannot be used; the message names the catalog and the row or id at fault."""

    def __init__(self, catalog: str, reason: str):
        self.catalog = catalog
        self.reason = _one_line(reason)
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"catalog {self.catalog}: {self.reason}"

    def __reduce__(self):
        return type(self), (self.catalog, self.reason)


class StoreError(Exception):
    """The result store refuses an operation; the message says why and what to do."""
