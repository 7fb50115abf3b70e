"""The result store's schema, in one place: status codes, array names, shapes, dtypes, dimensions and fills.

Every array has a leading dimension `dataset` (length N, the catalog's rows in order) followed by the trailing
shape of its `ArraySpec`. Names follow PyAutoLens (the TERMS) and are the words the CLI and config use.

Bookkeeping (always present, `BOOKKEEPING`):
    id            str      the catalog id
    status        int8     a `Status` code; 0 = PENDING is the fill, so a never-written dataset reads PENDING
    attempts      int32    how many times the dataset's block was tried
    error         str      why a dataset is FAILED or INVALID ("" otherwise)
    wall_time     float64  wall-clock seconds spent on the dataset (NaN = never run)
    image_shape   int32    (2,)  the true (ny, nx) of the image before padding (0, 0 = unknown)
    shape_bucket  int32    index into the root attribute `shape_buckets` (-1 = unknown)

Results (`result_specs`): the figure of merit and its terms, the evaluated parameter vectors and their
likelihoods, the reconstruction (padded to the largest source size, true size in `reconstruction_size`), the model
image and normalised residuals (padded to the largest image shape, NaN outside the mask and the true shape), and
for pixelized sources the mesh cell centres (y, x) in arcsec. To add results (the search's samples, weights,
evidence and parameter summaries), write one more small `*_specs` function and compose it in `result_specs`.

Root attributes: schema_version, lensfleet_version, config, catalog_hash, block_size, n_datasets, created, plus
what the driver adds (for example `shape_buckets`, `parameter_names`).
"""

import math
from dataclasses import dataclass
from enum import IntEnum

SCHEMA_VERSION = 1
DATASET_DIM = "dataset"


class Status(IntEnum):
    """State of one dataset in the store."""

    PENDING = 0  # never committed (the fill value)
    DONE = 1  # fitted; results are valid
    FAILED = 2  # the fit raised, or the driver gave up on its block after repeated attempts
    INVALID = 3  # the input failed validation; `error` says why


@dataclass(frozen=True)
class ArraySpec:
    """One store array: its name, per-dataset trailing shape and dimension names, dtype ("str" for text), fill."""

    name: str
    shape: tuple[int, ...] = ()
    dtype: str = "float64"
    dims: tuple[str, ...] = ()
    fill: float | int | str = math.nan

    def __post_init__(self):
        if len(self.shape) != len(self.dims):
            raise ValueError(f"array {self.name}: shape {self.shape} and dims {self.dims} differ in length")


TERMS = (
    "figure_of_merit",
    "log_evidence",
    "log_likelihood",
    "chi_squared",
    "noise_normalization",
    "regularization_term",
    "log_det_curvature_reg_matrix_term",
    "log_det_regularization_matrix_term",
)

BOOKKEEPING = (
    ArraySpec("id", dtype="str", fill=""),
    ArraySpec("status", dtype="int8", fill=int(Status.PENDING)),
    ArraySpec("attempts", dtype="int32", fill=0),
    ArraySpec("error", dtype="str", fill=""),
    ArraySpec("wall_time"),
    ArraySpec("image_shape", (2,), "int32", ("axis",), 0),
    ArraySpec("shape_bucket", dtype="int32", fill=-1),
)


def term_specs() -> list[ArraySpec]:
    """The figure of merit and its terms, one float per dataset."""
    return [ArraySpec(name) for name in TERMS]


def evaluation_specs(n_evaluations: int, n_parameters: int) -> list[ArraySpec]:
    """The parameter vectors evaluated for each dataset, with their figure of merit and log-likelihood."""
    return [
        ArraySpec("parameters", (n_evaluations, n_parameters), dims=("evaluation", "parameter")),
        ArraySpec("evaluation_figure_of_merit", (n_evaluations,), dims=("evaluation",)),
        ArraySpec("evaluation_log_likelihood", (n_evaluations,), dims=("evaluation",)),
    ]


def reconstruction_specs(max_source_size: int, pixelized: bool) -> list[ArraySpec]:
    """The best vector's source reconstruction (and mesh cell centres (y, x) for pixelized sources)."""
    specs = [
        ArraySpec("reconstruction", (max_source_size,), dims=("source_parameter",)),
        ArraySpec("reconstruction_size", dtype="int32", fill=0),
    ]
    if pixelized:
        specs.append(ArraySpec("mesh_centres", (max_source_size, 2), dims=("source_parameter", "axis")))
    return specs


def image_specs(max_image_shape: tuple[int, int]) -> list[ArraySpec]:
    """The best vector's model image and normalised residuals, native 2-D, padded to the largest image."""
    shape = tuple(int(n) for n in max_image_shape)
    return [ArraySpec(name, shape, dims=("y", "x")) for name in ("model_image", "normalized_residuals")]


def result_specs(
    max_image_shape: tuple[int, int], n_parameters: int, n_evaluations: int, max_source_size: int, pixelized: bool
) -> list[ArraySpec]:
    """Every result array of a run, in store order."""
    return [
        *term_specs(),
        *evaluation_specs(n_evaluations, n_parameters),
        *reconstruction_specs(max_source_size, pixelized),
        *image_specs(max_image_shape),
    ]
