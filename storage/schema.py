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
    psf_raw_sum   float64  the PSF's sum as stored in its file, before normalising to unit sum (NaN = not loaded)
    input_fingerprint str  the digest of the lens's files (names, sizes, versions) its results were planned
                           from ("" = unknown); a resume refits a committed lens whose files changed since
    checksum      uint64   the dataset's row digest over every other array (storage.integrity), written by
                           `write_block` with the block's data, before its status (0 = never committed)

Results (`result_specs`): the figure of merit and its terms, the evaluated parameter vectors and their
likelihoods, the reconstruction (padded to the largest source size, true size in `reconstruction_size`), the model
image and normalised residuals (padded to the largest image shape, NaN outside the mask and the true shape), and
for pixelized sources the mesh cell centres (y, x) in arcsec. To add results, write one more small `*_specs`
function and compose it in `result_specs`.

Search mode (`search_specs`, workers/search.py): the posterior on a fixed sample axis of `max_samples` (samples,
sample_weight summing to 1, sample_log_likelihood; NaN and weight 0 beyond sample_count), the log evidence and its
error, the likelihood evaluations and effective sample size, whether the sampler met its stopping criteria, and
the parameter summaries parameter_median, parameter_sigma (half the 16–84% width) and parameter_max_likelihood,
in the order of the root attribute `parameter_names`, and where the search's time went: search_likelihood_seconds
(the lens's share of the block's likelihood calls, by its share of their points) and search_sampler_seconds (its
sampler's own work: bounds, network training, drawing points, checkpoints; for a gradient search, its compiled
calls' time by the lens's share of their evaluations, and the host's work, Laplace, proposals and PSIS, shared
evenly). A gradient search (workers/gradient_search.py) also writes search_multimodal (1: its starts disagree, hand the lens to Nautilus; 0: they agree; -1, the fill: not assessed,
as by Nautilus), search_starts_at_best (starts that reached the best mode), search_pareto_k (PSIS k̂ of its
importance weights; < 0.7 reliable). The terms, `parameters`
(one evaluation: the max-likelihood vector), reconstruction and images are then the max-likelihood fit's.

Pipeline stages (`stage_specs`, workers/pipeline.py): the first stage is the root's arrays; each later stage
writes the same arrays (its search's too, when it is searched) in a Zarr group named after it
(`source_pix/figure_of_merit`, `mass_total/parameter_median`, ...); the root attribute `stages` lists every stage
with its group and parameter names. With later stages, every stage also has a `stage_status` per dataset: a block
commits each stage as it finishes (that stage's data, then its stage_status), so a block redone after a crash
resumes at the first stage it had not finished; the dataset's `status` is written last, once every stage is.
A stage with a positions likelihood (`positions = {...}`) also stores what it used: `positions` (image, yx) the
multiple images in arcsec (NaN rows beyond those found) and `positions_threshold` (arcsec; NaN where fewer than
two images were found and the stage ran without the penalty).

Root attributes: schema_version, lensfleet_version, config, catalog_hash, block_size, n_datasets, store_id (a
random id of this store's creation, part of every checksum), arrays (every array's name), created, plus what the
driver adds (for example `shape_buckets`, `parameter_names`).

Schema 2 (this one) added input_fingerprint, checksum, store_id, arrays and Zstd's frame checksum on every chunk;
psf_raw_sum and the search_*_seconds came later within it (a store created without them is written without
them).
"""

import math
from dataclasses import dataclass, replace
from enum import IntEnum

SCHEMA_VERSION = 2
DATASET_DIM = "dataset"


def n_blocks(n_datasets: int, block_size: int) -> int:
    """Blocks of `block_size` datasets covering `n_datasets` (the last may be short)."""
    return -(-n_datasets // block_size)


def block_slice(k: int, block_size: int, n_datasets: int) -> slice:
    """The datasets of block k along the dataset axis: [k·B, min((k+1)·B, N)); IndexError out of range."""
    if not 0 <= k < n_blocks(n_datasets, block_size):
        raise IndexError(f"block {k} out of range 0..{n_blocks(n_datasets, block_size) - 1}")
    return slice(k * block_size, min((k + 1) * block_size, n_datasets))


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
    ArraySpec("psf_raw_sum"),
    ArraySpec("input_fingerprint", dtype="str", fill=""),
    ArraySpec("checksum", dtype="uint64", fill=0),
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


def reconstruction_specs(max_reconstruction_size: int, pixelized: bool) -> list[ArraySpec]:
    """The best vector's source reconstruction (and mesh cell centres (y, x) for pixelized sources)."""
    specs = [
        ArraySpec("reconstruction", (max_reconstruction_size,), dims=("linear_parameter",)),
        ArraySpec("reconstruction_size", dtype="int32", fill=0),
    ]
    if pixelized:
        specs.append(ArraySpec("mesh_centres", (max_reconstruction_size, 2), dims=("linear_parameter", "axis")))
    return specs


def image_specs(max_image_shape: tuple[int, int]) -> list[ArraySpec]:
    """The best vector's model image and normalised residuals, native 2-D, padded to the largest image."""
    shape = tuple(int(n) for n in max_image_shape)
    return [ArraySpec(name, shape, dims=("y", "x")) for name in ("model_image", "normalized_residuals")]


def search_specs(max_samples: int, n_parameters: int, n_derived: int = 0) -> list[ArraySpec]:
    """A search's posterior (fixed sample axis, true length in sample_count), evidence and parameter summaries;
    with `n_derived` quantities derived from the parameters (attribute `derived_names`), their samples and
    summaries too."""
    derived = [
        ArraySpec("derived_samples", (max_samples, n_derived), dims=("sample", "derived")),
        *(ArraySpec(f"derived_{s}", (n_derived,), dims=("derived",)) for s in ("median", "sigma", "max_likelihood")),
    ] if n_derived else []
    return [
        ArraySpec("samples", (max_samples, n_parameters), dims=("sample", "parameter")),
        ArraySpec("sample_weight", (max_samples,), dims=("sample",)),
        ArraySpec("sample_log_likelihood", (max_samples,), dims=("sample",)),
        ArraySpec("sample_count", dtype="int32", fill=0),
        ArraySpec("search_log_evidence"),
        ArraySpec("search_log_evidence_error"),
        ArraySpec("search_likelihood_evaluations", dtype="int64", fill=0),
        ArraySpec("search_effective_samples"),
        ArraySpec("search_converged", dtype="int8", fill=0),
        ArraySpec("search_likelihood_seconds"),
        ArraySpec("search_sampler_seconds"),
        ArraySpec("search_multimodal", dtype="int8", fill=-1),
        ArraySpec("search_starts_at_best", dtype="int32", fill=0),
        ArraySpec("search_pareto_k"),
        ArraySpec("parameter_median", (n_parameters,), dims=("parameter",)),
        ArraySpec("parameter_sigma", (n_parameters,), dims=("parameter",)),
        ArraySpec("parameter_max_likelihood", (n_parameters,), dims=("parameter",)),
    ] + derived


def positions_specs(max_images: int) -> list[ArraySpec]:
    """A stage's positions likelihood: the multiple images (y, x arcsec; NaN rows beyond those found) and the
    threshold (arcsec; NaN: fewer than two images were found, so no penalty applied)."""
    return [ArraySpec("positions", (max_images, 2), dims=("image", "yx")), ArraySpec("positions_threshold")]


STAGE_STATUS = ArraySpec("stage_status", dtype="int8", fill=int(Status.PENDING))


@dataclass(frozen=True)
class StageShape:
    """The store shape of one later pipeline stage: its group, parameters, largest reconstruction, whether its
    source is pixelized, its posterior's sample axis (None: evaluated, not searched), its derived quantities and
    its positions likelihood's most images (0: it has none)."""

    group: str
    n_parameters: int
    max_reconstruction_size: int
    pixelized: bool
    max_samples: int | None
    n_derived: int = 0
    max_images: int = 0


def stage_specs(stage: StageShape, max_image_shape: tuple[int, int]) -> list[ArraySpec]:
    """A later pipeline stage's results in the Zarr group `stage.group` (array names `GROUP/NAME`): the terms, the
    one evaluated vector, reconstruction and images of its maximum-likelihood fit, its search's arrays when it
    is searched, its positions likelihood's when it has one, and its `stage_status` per dataset (written after
    the stage's data)."""
    specs = [
        *term_specs(),
        *evaluation_specs(1, stage.n_parameters),
        *reconstruction_specs(stage.max_reconstruction_size, stage.pixelized),
        *image_specs(max_image_shape),
        *(search_specs(stage.max_samples, stage.n_parameters, stage.n_derived) if stage.max_samples is not None
          else ()),
        *(positions_specs(stage.max_images) if stage.max_images else ()),
        STAGE_STATUS,
    ]
    return [replace(spec, name=f"{stage.group}/{spec.name}") for spec in specs]


def result_specs(
    max_image_shape: tuple[int, int],
    n_parameters: int,
    n_evaluations: int,
    max_reconstruction_size: int,
    pixelized: bool,
    max_samples: int | None = None,
    stages: tuple[StageShape, ...] = (),
    n_derived: int = 0,
) -> list[ArraySpec]:
    """Every result array of a run, in store order: with `max_samples`, a search's arrays (with `n_derived`
    derived quantities); each of `stages` adds a later stage's group, and the first stage (the root) then has a
    `stage_status` of its own."""
    specs = [
        *term_specs(),
        *evaluation_specs(n_evaluations, n_parameters),
        *reconstruction_specs(max_reconstruction_size, pixelized),
        *image_specs(max_image_shape),
    ]
    if max_samples is not None:
        specs += search_specs(max_samples, n_parameters, n_derived)
    if stages:
        specs.append(STAGE_STATUS)
    for stage in stages:
        specs += stage_specs(stage, max_image_shape)
    return specs
