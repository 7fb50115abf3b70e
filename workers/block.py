"""The block pipeline: fit one block of a run and commit it to the store. Plain Python over the engine; the Ray
actor (workers/actor.py) is a thin shell around it, and tests run it without Ray.

    fitter = BlockFitter(spec, store)      # spec: workers.contract.RunSpec; store: an open, writable ResultStore
    fitter.warm_up()                       # one compiled call per shape bucket at the run's block size
    summary = fitter.fit(k, attempt)       # read, fit and commit block k; a small dict comes back
    fitter.progress()                      # from another thread while fit runs: the block's searches so far

A block is a store chunk of B consecutive datasets in plan order (so at a bucket boundary it holds two
buckets). Its datasets are read, each on its own (storage.errors.classify): bad input is INVALID with its
reason, a transient read error is retried and then FAILED, and an environment fault (a full disk, a refused
store) stops the block uncommitted; the rest go on. Valid datasets are grouped by shape bucket; each group is
padded to B lenses with copies of its first lens (their results are discarded), stacked to its bucket and
evaluated in one compiled call. A non-finite figure of merit is FAILED with the terms in its reason. The block
is committed with `ResultStore.write_block` (data first, status last), fenced by the driver's lease token;
arrays never travel to the driver.

Evaluate mode fits each dataset at its catalog vectors. Search mode (config.search) runs the pipeline's stages
(workers/pipeline.py) in order on each bucket group. A searched stage searches the group's lenses side by side
(workers/search.py), one sampler process per lens with priors from what the stage before found for it, their
likelihood requests merged into one compiled call of B lenses × n_batch vectors (the same program for every
block of a bucket), or by the gradient search (workers/gradient_search.py, `type = "gradient"`: each phase one
compiled call over the B lenses, nothing to checkpoint), with Nautilus checkpoints under `checkpoint_root()` so
that a block redone after its worker died resumes its searches (deleted once the block is committed); each lens's max-likelihood vector is then
evaluated exactly as evaluate mode evaluates a catalog vector, into the stage's store group. An unsearched stage
is evaluated at the previous stage's maximum likelihood. A lens that fails a stage (its search fails, its mask
is too small for a mesh) is FAILED with the reason and leaves the pipeline; the others go on. With later stages,
each stage is committed as it finishes (`ResultStore.write_stage`), and a block redone starts every lens at the
first stage it had not finished.

wall_time is the block's wall-clock seconds shared equally among its datasets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from storage.datasets import ImagingData, load_imaging
from storage.errors import DatasetError, Fault, classify, retry_transient
from storage.schema import Status
from workers.contract import BucketSpec, DatasetSpec, RunSpec
from workers.datasets import fit_mask, mask_geometry, masked_imaging
from workers.faults import BlockHooks
from workers.inversion.batch import evaluate_block, stack
from workers.inversion.adapt import adapt_image
from workers.inversion.imaging import MaskedImaging, prepare_imaging, with_adapt_image, with_positions
from workers.inversion.positions import dataset_positions
from workers.model.buckets import Bucket, common_bucket
from workers.model.description import Model, parameter_names
from workers.pipeline import Stage, StagePosterior
from workers.rows import empty_block, fit_row, search_row
from workers.coordinator import SearchProgress
from workers.search import search_block


@dataclass(frozen=True)
class Member:
    """A valid dataset of a block: its index in the block, its data, its engine dataset and the fit's mask."""

    index: int
    data: ImagingData
    imaging: MaskedImaging
    mask: np.ndarray


@dataclass
class BlockRows:
    """What a block commits: its store rows, status and error per dataset."""

    out: dict[str, np.ndarray]
    status: np.ndarray
    errors: list[str]

    def fail(self, i: int, status: Status, error: str) -> None:
        self.status[i], self.errors[i] = status, error


def checkpoint_root(store: str) -> Path:
    """Where this node keeps the search checkpoints of a store's blocks: LENSFLEET_CHECKPOINTS, else
    ~/.cache/lensfleet/checkpoints, then a folder per store (a hash of its URL). Local to the node: a block
    redone on the same node resumes its searches, elsewhere it starts them afresh."""
    base = os.environ.get("LENSFLEET_CHECKPOINTS") or os.path.join(
        os.path.expanduser("~"), ".cache", "lensfleet", "checkpoints"
    )
    return Path(base) / hashlib.sha256(store.encode()).hexdigest()[:16]


def group_bucket(imagings: list[MaskedImaging], planned: Bucket | None) -> Bucket:
    """The bucket a group is stacked to: the planned one when it covers every dataset, else a common one (a file
    mask moved pixels into the blurring region, or the shapes were not planned)."""
    actual = [im.bucket for im in imagings]
    if planned is not None and all(planned.covers(b) for b in actual):
        return planned
    return common_bucket([*([planned] if planned else []), *actual])


class BlockFitter:
    """Fits blocks of a run and commits them (module docstring)."""

    def __init__(self, spec: RunSpec, store):
        self.spec = spec
        self.store = store
        self.config = spec.config
        self.n_evaluations = store.array("parameters").shape[1]  # vectors per dataset (evaluate mode)
        self.max_image_shape = tuple(store.array("model_image").shape[1:])
        self.staged = bool(self.config.stages)  # later stages: each stage committed as it finishes
        self.block: int | None = None  # the block being fitted, and its searches' live state
        self.live = SearchProgress()

    def progress(self) -> dict:
        """The block being fitted (None between blocks) and its searches so far (SearchProgress.snapshot)."""
        return {"block": self.block, **self.live.snapshot()}

    # -- one block ----------------------------------------------------------------------------------------------

    def fit(self, k: int, attempt: int = 1, hooks: BlockHooks = BlockHooks()) -> dict:
        """Fit and commit block k; returns its counts by status, likelihood evaluations, seconds and its searches
        (SearchProgress.snapshot)."""
        started = time.perf_counter()
        self.block, self.live = k, SearchProgress()
        hooks.started(k, attempt)
        spec = self.spec
        rows = spec.datasets[spec.block(k)]
        block = BlockRows(self._start_rows(k, rows), np.full(len(rows), int(Status.DONE), np.int8), [""] * len(rows))
        evaluations, searches = 0, []
        for planned, members in self._groups(rows, block):
            bucket = group_bucket([m.imaging for m in members], planned)
            if self.config.search is None:
                vectors = [np.asarray(rows[m.index].vectors, np.float64) for m in members]
                evaluations += self._evaluate(members, vectors, bucket, self.config.model, block)
            else:
                n, group_searches = self._pipeline(k, rows, members, bucket, block, hooks)
                evaluations += n
                searches += group_searches
        if self.config.search is not None:
            hooks.searched(k, attempt, sum(s.block_calls for s in searches))
        hooks.before_commit(k, self.store, spec.block(k))
        seconds = time.perf_counter() - started
        n = len(rows)
        self.store.write_block(k, block.out, block.status, np.full(n, attempt, np.int32), block.errors,
                               np.full(n, seconds / n), fence=spec.fence)
        self.block = None
        # committed: the block's checkpoints (every stage's, earlier attempts' too) are no longer needed
        shutil.rmtree(checkpoint_root(spec.store) / f"block-{k}", ignore_errors=True)
        return {
            "block": k, "attempt": attempt, "datasets": n,
            **{s.name.lower(): int((block.status == s).sum()) for s in (Status.DONE, Status.FAILED, Status.INVALID)},
            "likelihood_evaluations": evaluations, "seconds": seconds, "searches": self.live.snapshot(),
        }

    def _groups(self, rows: tuple[DatasetSpec, ...], block: BlockRows) -> list[tuple[Bucket | None, list[Member]]]:
        """Read and validate the block's datasets (INVALID ones marked in `block`); the valid ones grouped by
        planned bucket (None: not planned, and each such dataset a group of its own)."""
        groups: dict[object, list[Member]] = {}
        planned: dict[object, Bucket | None] = {}
        for i, row in enumerate(rows):
            if row.error:
                block.fail(i, Status.INVALID, row.error)
                continue
            try:
                data = retry_transient(lambda: load_imaging(row.path, row.id, row.pixel_scale,
                                                            self.spec.storage_options, row.band))
                imaging = masked_imaging(data, self.config.dataset, self.config.model, row.mask_radius, row.mask_centre)
            except Exception as e:  # the lens's own outcome, never its block mates'
                fault = classify(e)
                if fault is Fault.ENVIRONMENT:
                    raise  # a full disk, a refused store: commit nothing, the block stays PENDING
                block.fail(i, fault.status, str(e) if isinstance(e, DatasetError) else
                           f"dataset {row.id}: {row.path}: {type(e).__name__}: {e}")
                continue
            if any(n > m for n, m in zip(data.image.shape, self.max_image_shape)):  # planning could not read it
                block.fail(i, Status.INVALID, f"dataset {row.id}: {row.path}: image shape {data.image.shape} exceeds "
                           f"the store's largest image {self.max_image_shape} ([dataset] max_image_side)")
                continue
            block.out["image_shape"][i] = data.image.shape
            if "psf_raw_sum" in block.out:  # absent from a store created before it
                block.out["psf_raw_sum"][i] = data.psf_raw_sum
            key = row.bucket if row.bucket >= 0 else ("own", i)
            planned[key] = self.spec.buckets[row.bucket].bucket if row.bucket >= 0 else None
            groups.setdefault(key, []).append(Member(i, data, imaging, fit_mask(
                data, *mask_geometry(data, self.config.dataset, row.mask_radius, row.mask_centre))))
        return [(planned[key], members) for key, members in groups.items()]

    def _evaluate(self, members: list[Member], vectors: list[np.ndarray], bucket: Bucket, model: Model,
                  block: BlockRows, prefix: str = "") -> int:
        """Evaluate one bucket group at its vectors (each (V, n)) in one call padded to B lenses, into the rows of
        store group `prefix`; returns the likelihood evaluations."""
        import jax

        pad = max(self.spec.block_size, len(members)) - len(members)
        stacked = stack([m.imaging for m in members] + [members[0].imaging] * pad, bucket)
        batch = np.stack(vectors + [vectors[0]] * pad)
        result = jax.device_get(evaluate_block(stacked, batch, model, with_arrays=True))
        for j, m in enumerate(members):
            error = fit_row(block.out, m.index, result, j, m.data, m.mask, vectors[j], prefix)
            if error:
                block.fail(m.index, Status.FAILED, error)
        return len(members) * batch.shape[1]

    def _start_rows(self, k: int, rows: tuple[DatasetSpec, ...]) -> dict[str, np.ndarray]:
        """The block's rows at their fills, with every stage a dataset has already finished (stage_status DONE in
        the store) as the store holds it."""
        out = empty_block(self.store, rows, self.spec.driver_run)
        if self.staged:
            try:
                stored = self.store.read_block(k)
            except Exception:  # a chunk that cannot be read: nothing of the block is taken as finished
                return out
            for stage in self.config.pipeline:
                prefix = _prefix(stage)
                done = stored[prefix + "stage_status"] == Status.DONE
                for name in self._stage_arrays(prefix):
                    out[name][done] = stored[name][done]
        return out

    def _stage_arrays(self, prefix: str) -> list[str]:
        """The store's data arrays of the stage with this group prefix ("" for the first stage, the root)."""
        return [n for n in self.store.data_names if (n.startswith(prefix) if prefix else "/" not in n)]

    def _pipeline(self, k: int, rows, members: list[Member], bucket: Bucket, block: BlockRows,
                  hooks: BlockHooks) -> tuple[int, list]:
        """Every stage of the pipeline for one bucket group of block k; returns (likelihood evaluations, the
        BlockSearches, whose checkpoints go once the block is committed)."""
        evaluations, searches, alive, previous, light_source = 0, [], list(members), None, None
        for stage in self.config.pipeline:
            prefix = _prefix(stage)
            todo = [m for m in alive if not (self.staged and block.out[prefix + "stage_status"][m.index] == Status.DONE)]
            found = {m.index: _posterior(previous, block.out, m.index) for m in todo} if previous else {}
            fits = []
            for m in todo:
                shortfall = stage.model.pixel_shortfall(m.imaging.bucket.pixels)
                if shortfall:
                    block.fail(m.index, Status.FAILED, f"dataset {rows[m.index].id}: stage {stage.name}: {shortfall}")
                else:
                    fits.append(m)
            if stage.positions is not None and light_source is not None:
                fits = [p for m in fits if (p := self._with_positions(m, stage, light_source, previous,
                                                                     found[m.index], block, rows)) is not None]
            if stage.model.pixelized and stage.model.source.adapts_to_image:
                fits = [a for m in fits if (a := self._with_adapt_image(m, stage, previous, found[m.index], block,
                                                                        rows)) is not None]
            if fits and stage.search is not None:
                n, search = self._search(k, rows, stage, fits, found, bucket, block, hooks)
                evaluations += n
                searches.append(search)
            elif fits:
                vectors = [stage.start(found[m.index])[None, :] for m in fits]
                evaluations += self._evaluate(fits, vectors, bucket, stage.model, block, prefix)
            if self.staged and todo:
                for m in todo:
                    block.out[prefix + "stage_status"][m.index] = block.status[m.index]
                self.store.write_stage(k, {n: block.out[n] for n in self._stage_arrays(prefix)},
                                       prefix + "stage_status", fence=self.spec.fence)
            alive = [m for m in alive if block.status[m.index] == Status.DONE]
            previous = stage
            light_source = stage if not stage.model.pixelized else light_source
        return evaluations, searches

    @staticmethod
    def _with_positions(m: Member, stage: Stage, light_source: Stage, previous: Stage, found: StagePosterior,
                        block: BlockRows, rows) -> Member | None:
        """The member with `stage`'s positions likelihood: the images of the source centre of the last stage with
        a light-profile source, the threshold from the previous stage (pipeline.py), both written to the stage's
        rows; unchanged (threshold NaN in the store) if fewer than two images are found; None, the dataset FAILED
        with the reason, if finding them raised."""
        try:
            images, threshold = dataset_positions(
                m.imaging, light_source.model, _posterior(light_source, block.out, m.index).max_likelihood,
                previous.model, found.max_likelihood, stage.positions.factor, stage.positions.minimum_threshold)
        except Exception as error:  # one lens's failure stays that lens's
            block.fail(m.index, Status.FAILED, f"dataset {rows[m.index].id}: stage {stage.name}: positions: {error}")
            return None
        p = _prefix(stage)
        if p + "positions" in block.out:  # absent from a store created before it
            block.out[p + "positions"][m.index] = np.nan
            block.out[p + "positions"][m.index, : len(images)] = images
            block.out[p + "positions_threshold"][m.index] = threshold
        return replace(m, imaging=with_positions(m.imaging, images, threshold)) if len(images) >= 2 else m

    @staticmethod
    def _with_adapt_image(m: Member, stage: Stage, previous: Stage, found: StagePosterior, block: BlockRows,
                          rows) -> Member | None:
        """The member with the adapt image of the previous stage's maximum likelihood (inversion/adapt.py), which
        `stage`'s *_adapt_image mesh follows; None, the dataset FAILED with the reason, if computing it raised."""
        try:
            image = adapt_image(m.imaging, found.max_likelihood, previous.model)
        except Exception as error:  # one lens's failure stays that lens's
            block.fail(m.index, Status.FAILED, f"dataset {rows[m.index].id}: stage {stage.name}: adapt image: {error}")
            return None
        return replace(m, imaging=with_adapt_image(m.imaging, image))

    def _search(self, k: int, rows, stage: Stage, members: list[Member], found: dict[int, StagePosterior],
                bucket: Bucket, block: BlockRows, hooks: BlockHooks):
        """Search one stage for the lenses of a bucket group, each with priors from what the previous stage
        found for it (`found`, empty for the first stage), then evaluate each lens's maximum likelihood; returns
        (likelihood evaluations, the BlockSearch)."""
        from workers.posterior import LensSearch

        options, prefix = stage.search, _prefix(stage)
        lenses = ([m.imaging for m in members], [rows[m.index].id for m in members], stage.model,
                  [stage.prior_transform(found.get(m.index)) for m in members], options)
        if options.type == "gradient":
            from workers.gradient_search import gradient_search_block

            search = gradient_search_block(*lenses, bucket=bucket, with_fit=False, slots=self.spec.block_size,
                                           progress=self.live)
        else:
            search = search_block(
                *lenses, bucket=bucket, with_fit=False, slots=self.spec.block_size,
                checkpoint_dir=checkpoint_root(self.spec.store) / f"block-{k}" / stage.name if options.checkpoint
                else None, on_round=hooks.search_round(k, stage.name), progress=self.live,
            )
        best: list[tuple[Member, np.ndarray]] = []
        for m, result in zip(members, search.results):
            if isinstance(result, LensSearch):
                search_row(block.out, m.index, {prefix + n: v for n, v in result.to_row(options.max_samples).items()})
                best.append((m, result.parameter_max_likelihood[None, :]))
            else:
                block.fail(m.index, Status.FAILED, str(result))
        evaluations = sum(search.likelihood_evaluations)
        if best:
            evaluations += self._evaluate([m for m, _ in best], [v for _, v in best], bucket, stage.model, block,
                                          prefix)
        return evaluations, search

    # -- start-up -----------------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Compile every call a block of each shape bucket makes, on synthetic datasets of its shapes."""
        for bucket in self.spec.buckets:
            self._warm_up(bucket)

    def _warm_up(self, bucket: BucketSpec) -> None:
        import jax

        options, model, b = self.config.dataset, self.config.model, self.spec.block_size
        psf = np.zeros(bucket.psf_shape)
        psf[bucket.psf_shape[0] // 2, bucket.psf_shape[1] // 2] = 1.0
        imaging = prepare_imaging(
            np.zeros(bucket.image_shape), np.ones(bucket.image_shape), psf, bucket.pixel_scale,
            mask_radius=bucket.mask_radius, mask=bucket.mask(),
            over_sample_size_lp=options.over_sample_size_lp,
            over_sample_size_pixelization=options.over_sample_size_pixelization,
        )
        stacked = stack([imaging] * b, bucket.bucket)

        def vectors(of: Model, n: int) -> np.ndarray:
            one = np.array([1.0 if name == "lens.mass.einstein_radius" else 0.0 for name in parameter_names(of)])
            return np.broadcast_to(one, (b, n, one.size)).copy()

        if self.config.search is None:
            jax.block_until_ready(evaluate_block(stacked, vectors(model, self.n_evaluations), model, with_arrays=True))
            return
        from workers.search import block_figure_of_merit, block_plan

        for stage in self.config.pipeline:  # each stage's search call and its maximum-likelihood evaluation
            if stage.model.pixel_shortfall(imaging.bucket.pixels):
                continue
            jax.block_until_ready(evaluate_block(stacked, vectors(stage.model, 1), stage.model, with_arrays=True))
            # a gradient search compiles in its first block
            if stage.search is not None and stage.search.type == "nautilus":
                batch = vectors(stage.model, stage.search.n_batch)
                chunk, lenses_per_call = block_plan(stacked, batch, stage.model, stage.search.eval_chunk)
                block_figure_of_merit(stacked, batch, stage.model, chunk, lenses_per_call=lenses_per_call)


def _prefix(stage: Stage) -> str:
    """The store names' prefix of a stage's arrays: "" for the first stage (the root), else "GROUP/"."""
    return f"{stage.group}/" if stage.group else ""


def _posterior(stage: Stage, out: dict[str, np.ndarray], i: int) -> StagePosterior:
    """What `stage` found for dataset i of the block: its posterior summaries, or for an unsearched stage its
    one evaluated vector (sigma 0: the next stage's priors then take the width modifiers' widths)."""
    p = _prefix(stage)
    if stage.search is not None:
        return StagePosterior(stage.parameter_names, out[p + "parameter_median"][i], out[p + "parameter_sigma"][i],
                              out[p + "parameter_max_likelihood"][i])
    vector = out[p + "parameters"][i, 0]
    return StagePosterior(stage.parameter_names, vector, np.zeros_like(vector), vector)
