"""The run's side of the result store: resume or create it for a plan, record each driver run, describe the run
to the actors, commit a block the run gave up on.

Resume or create (`open_store`): the store is opened to resume it (it refuses another config or catalog, saying
what differs; `restart` deletes it), then the catalog is planned (scheduler.plan) with the store's block size when
resuming, in the store's dataset order and bucket indices. A new store is created with every array at its final
size (result_specs from the plan, one evaluation per dataset, plus `driver_run`: which driver run committed a
dataset) and the attributes `mode`, `catalog`, `shape_buckets`, `parameter_names` (and `stages`); the planned
shape bucket and image shape of every dataset are written at once. Each driver run appends a record to the
attribute `runs`. The config recorded in (and checked against) the store is fit.toml's content.

Every write goes through named ResultStore methods (storage/store.py).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from scheduler.plan import Plan, make_plan
from storage.catalog import Catalog
from storage.locations import resolve
from storage.schema import ArraySpec, StageShape, Status, result_specs
from storage.store import ResultStore
from workers.config import FitConfig
from workers.contract import RunSpec
from workers.derived import derived_names
from workers.model.description import MAX_IMAGES

DRIVER_RUN = ArraySpec("driver_run", dtype="int32", fill=0)  # which driver run (1, 2, ...) committed a dataset
EVALUATIONS = 1  # parameter vectors stored per dataset: the catalog's (evaluate mode) or the max-likelihood one


def absolute(location: str) -> str:
    """Local paths made absolute (actors may run in another working directory); URLs as given."""
    return resolve(os.getcwd(), location)


def open_store(
    url: str, config: FitConfig, catalog: Catalog, block_size: int, restart: bool, storage_options: dict | None,
) -> tuple[ResultStore, Plan, int]:
    """Resume the store or create it; the plan in the store's order; this run's number (1, 2, ...)."""
    store = ResultStore.open(url, config.to_dict(), catalog.hash, restart=restart, storage_options=storage_options)
    if store is not None and store.block_size != block_size:
        print(f"lensfleet: resuming with the store's block size {store.block_size} (asked for {block_size})",
              file=sys.stderr)
    plan = make_plan(catalog, config, store.block_size if store is not None else block_size, storage_options)
    if store is None:
        store = _create(url, config, catalog, plan, storage_options)
    else:
        plan = plan.in_store_order(store.read_array("id").tolist())
        plan = plan.with_stored_buckets(store.attrs.get("shape_buckets", []))
        store.write_shape_buckets(plan.bucket_attrs())
    return store, plan, store.record_driver_run()


def _create(url: str, config: FitConfig, catalog: Catalog, plan: Plan, storage_options: dict | None) -> ResultStore:
    model, search = config.model, config.search
    stages = tuple(StageShape(st.group, len(st.parameter_names), st.model.n_linear, st.model.pixelized,
                              st.search.max_samples if st.search else None, len(derived_names(st.parameter_names)),
                              MAX_IMAGES if st.positions is not None else 0)
                   for st in config.stages)
    specs = [
        *result_specs(plan.max_image_shape, len(plan.parameter_names), EVALUATIONS, model.n_linear, model.pixelized,
                      max_samples=search.max_samples if search else None, stages=stages,
                      n_derived=len(derived_names(plan.parameter_names))),
        DRIVER_RUN,
    ]
    attrs = {
        "mode": "evaluate" if search is None else "search",
        "catalog": absolute(catalog.path),
        "shape_buckets": plan.bucket_attrs(),
        "parameter_names": list(plan.parameter_names),
        "derived_names": list(derived_names(plan.parameter_names)) if search else [],
    }
    if config.stages:  # every pipeline stage: its store group ("" for the root) and parameter names
        attrs["stages"] = [{"name": st.name, "group": st.group, "parameter_names": list(st.parameter_names),
                            "derived_names": list(derived_names(st.parameter_names)),
                            "searched": st.search is not None} for st in config.pipeline]
    store = ResultStore.create(url, plan.ids, plan.block_size, specs, config.to_dict(), catalog.hash, attrs,
                               storage_options)
    # no actor runs yet; each actor writes the same values again when it commits its block
    store.write_planned(np.array([d.bucket for d in plan.datasets], np.int32),
                        np.array([d.image_shape for d in plan.datasets], np.int32).reshape(-1, 2))
    return store


def blocks_to_run(store: ResultStore, retry_failed: bool) -> list[int]:
    """The blocks never committed, and with `retry_failed` those holding FAILED datasets too."""
    todo = store.pending_blocks()
    return sorted(set(todo) | set(store.blocks_with(Status.FAILED))) if retry_failed else todo


def repair(store: ResultStore, plan: Plan, fence: str) -> list[str]:
    """Make PENDING again, on a resumed store, every committed block whose stored data are not what was
    committed (ResultStore.verify_blocks: a flipped byte, a deleted or empty chunk, a stale writer's block) or
    whose lenses' files changed since they were fitted (changed_inputs); one line per block says why."""
    if store.store_id is None:  # schema 1: no checksums or fingerprints to check
        return []
    why = {k: f"block {k} is damaged ({reason}): fitting it again" for k, reason in store.verify_blocks().items()}
    for k, ids in store.changed_inputs([d.fingerprint for d in plan.datasets]).items():
        why.setdefault(k, f"block {k}: the files of {', '.join(ids)} changed since they were fitted: fitting it again")
    store.reset_blocks(sorted(why), fence=fence)
    return [why[k] for k in sorted(why)]


def run_spec(
    store: ResultStore, plan: Plan, config: FitConfig, driver_run: int, compile_cache: str | None, fence: str,
) -> RunSpec:
    """What every actor of the run gets: the plan and where its store is (result shapes come from the store)."""
    return RunSpec(
        store=absolute(store.url),
        config=config,
        datasets=plan.datasets,
        buckets=plan.buckets,
        block_size=plan.block_size,
        driver_run=driver_run,
        compile_cache=absolute(compile_cache) if compile_cache else None,
        storage_options=store.storage_options,
        fence=fence,
    )


def commit_failed(store: ResultStore, plan: Plan, k: int, attempts: int, error: str, driver_run: int,
                  fence: str) -> dict:
    """Commit block k FAILED with `error` after `attempts` (datasets planning refused stay INVALID with their
    reason), fenced by the driver's lease token; returns {"failed": n, "invalid": n}."""
    rows = plan.datasets[plan.block(k)]
    n = len(rows)
    status = np.array([Status.INVALID if d.error else Status.FAILED for d in rows], np.int8)
    results = {
        "shape_bucket": np.array([d.bucket for d in rows], np.int32),
        "image_shape": np.array([d.image_shape for d in rows], np.int32),
        "driver_run": np.full(n, driver_run, np.int32),
        "input_fingerprint": np.array([d.fingerprint for d in rows]),
    }
    store.write_block(k, results, status, np.full(n, attempts), [d.error or error for d in rows], np.full(n, np.nan),
                      fence=fence)
    return {"failed": int((status == Status.FAILED).sum()), "invalid": int((status == Status.INVALID).sum())}
