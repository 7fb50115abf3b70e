"""`lensfleet status STORE [--json] [--verify]`: what a result store holds, read from the store alone (no Ray, no
JAX). A damaged chunk never stops it: every array is read block by block, a chunk that cannot be read counts as
its fill (a damaged status chunk as PENDING) and is listed under `unreadable`.

    counts        datasets DONE / FAILED / INVALID / PENDING (the store's `status` array)
    blocks        blocks committed (no dataset PENDING) and blocks still to run
    throughput    datasets_per_hour: wall-clock throughput of the driver runs. For each run r (the store's `runs`
                  attribute, one record per `lensfleet run`), its datasets are those whose `driver_run` is r, its
                  span runs from its `started_utc` to the last modification time of a status chunk of its blocks
                  (a block's status chunk is written last, so that is its commit time); throughput is the sum of
                  the runs' datasets over the sum of their spans, so idle time between a stop and a resume does
                  not count. Without `runs`/`driver_run` (a store not written by `lensfleet run`) the span is
                  `created` → last commit.
                  datasets_per_actor_hour: datasets per hour of one actor's time, from `wall_time` (the block's
                  seconds shared among its datasets): 3600 × (datasets with a wall time) / Σ wall_time.
    worst_fits    the DONE lenses with the highest reduced χ² = chi_squared / N_used, N_used = the pixels inside
                  the lens's mask (the finite pixels of its `normalized_residuals`). At the right model and noise
                  it is ≈ 1; unlike figure_of_merit it does not grow with the image size or mask, so lenses of
                  different imaging rank together. Finding them reads `normalized_residuals` block by block
                  (one chunk in memory at a time); `worst=0` skips that read on a very large store.
    search        search mode only (the store's `mode` is "search"): of the DONE lenses, how many searches met
                  their stopping criteria, and the median (min–max) likelihood evaluations, effective sample
                  size and log-evidence error per lens, and where a search's time went per lens: likelihood
                  seconds (its share of the block's likelihood calls) and sampler seconds (its sampler's own
                  work: bounds, network training, drawing points, checkpoints); absent from older stores.
    errors        FAILED and INVALID datasets grouped by reason: the error text without its "dataset ID: "
                  prefix, with a file path cut to its file name, the lens's id replaced by <id>, and numbers
                  replaced by N (so "image has 3 NaN/inf pixels ... at (y, x) = (50, 50)" and the same problem
                  with other counts form one group). Each group lists its count, a few ids and one full message.
    unreadable    the chunks (array, block, error) that could not be read.
    verify        with `verify` (`--verify`): every committed block re-read in full and checked against the
                  checksums written with it (ResultStore.verify_blocks: a flipped byte, a deleted chunk, an empty
                  or damaged status chunk, a stale writer's block); the corrupt blocks with their datasets and
                  reason. A resume (`lensfleet run`, the same command) refits exactly those blocks.

`summarize(url)` returns all of it as one JSON-ready dict (what `--json` prints); `format_summary` the text;
`damaged(summary)` whether anything was found unreadable or corrupt (`lensfleet status` then exits 1).
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np

from storage.locations import filesystem
from storage.schema import Status
from storage.store import ResultStore

WORST_DEFAULT = 5
ERROR_IDS_SHOWN = 5
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")


def summarize(url: str, worst: int = WORST_DEFAULT, storage_options: dict | None = None,
              verify: bool = False) -> dict:
    """Everything `lensfleet status` reports about the store at `url`, as a JSON-ready dict."""
    store = ResultStore.open_existing(url, storage_options=storage_options)
    read = _Reads(store)
    ids = np.asarray(read("id").tolist(), dtype=object)
    status = read("status").astype(np.int64)
    counts = {s.name.lower(): int((status == s).sum()) for s in Status}
    pending_blocks = sorted({int(i) // store.block_size for i in np.flatnonzero(status == Status.PENDING)})
    runs = store.attrs.get("runs") or []
    summary = {
        "store": url,
        "datasets": store.n_datasets,
        "counts": counts,
        "block_size": store.block_size,
        "blocks": {"total": store.n_blocks, "committed": store.n_blocks - len(pending_blocks),
                   "pending": len(pending_blocks)},
        "driver_runs": len(runs),
        "created_utc": store.attrs.get("created"),
        "throughput": throughput(store, read, status, runs),
        "worst_fits": worst_fits(store, read, ids, status, worst) if worst > 0 else [],
        "search": search_summary(read, status) if store.attrs.get("mode") == "search" else None,
        "stages": stage_summaries(store, read) if store.attrs.get("stages") else [],
        "errors": error_groups(ids, status, read("error").tolist()),
        "unreadable": read.unreadable,
        "verify": None,
    }
    if verify:
        damaged_status = {u["block"] for u in read.unreadable if u["array"] == "status"}
        committed = sorted((set(range(store.n_blocks)) - set(pending_blocks)) | damaged_status)
        corrupt = store.verify_blocks(committed)
        summary["verify"] = {
            "blocks_checked": len(committed),
            "corrupt": [{"block": k, "datasets": [str(i) for i in ids[store.block_slice(k)]], "reason": reason}
                        for k, reason in sorted(corrupt.items())],
        }
    return summary


def damaged(summary: dict) -> bool:
    """Whether the summary found a chunk it could not read or a corrupt block."""
    return bool(summary["unreadable"] or (summary["verify"] and summary["verify"]["corrupt"]))


class _Reads:
    """Reads whole arrays block by block (ResultStore.read_blocks), collecting the chunks it could not read."""

    def __init__(self, store: ResultStore):
        self.store = store
        self.unreadable: list[dict] = []

    def __call__(self, name: str) -> np.ndarray:
        values, failed = self.store.read_blocks(name)
        self.note(name, failed)
        return values

    def note(self, name: str, failed: Mapping[int, str]) -> None:
        self.unreadable += [{"array": name, "block": k, "error": e} for k, e in sorted(failed.items())]


def stage_summaries(store: ResultStore, read: _Reads) -> list[dict]:
    """Per pipeline stage (the store's `stages` attribute): lenses that finished it (stage_status DONE) or
    failed in it, for a searched stage its search summary over the lenses that finished it, and for a stage with
    a positions likelihood the lenses that finished it with the penalty and those with fewer than two images
    (without it)."""
    out = []
    for stage in store.attrs["stages"]:
        p = f"{stage['group']}/" if stage["group"] else ""
        stage_status = read(p + "stage_status")
        summary = {"name": stage["name"], "group": stage["group"], "done": int((stage_status == Status.DONE).sum()),
                   "failed": int((stage_status == Status.FAILED).sum())}
        if stage.get("searched"):
            summary["search"] = search_summary(read, stage_status, p)
        if p + "positions_threshold" in store.data_names:  # a stage with a positions likelihood
            done = stage_status == Status.DONE
            applied = np.isfinite(read(p + "positions_threshold"))
            summary["positions"] = {"applied": int((done & applied).sum()), "too_few_images": int((done & ~applied).sum())}
        out.append(summary)
    return out


def search_summary(read: _Reads, status: np.ndarray, prefix: str = "") -> dict:
    """Search mode: converged searches and per-lens evaluations, effective samples, log-evidence error, over
    the DONE lenses (of a pipeline stage's group, with `prefix`)."""
    done = status == Status.DONE

    def spread(name: str) -> dict | None:
        values = read(prefix + name)[done].astype(np.float64)
        if not values.size:
            return None
        return {"median": float(np.median(values)), "min": float(values.min()), "max": float(values.max())}

    timed = all(prefix + n in read.store.data_names for n in ("search_likelihood_seconds", "search_sampler_seconds"))
    return {
        "searched": int(done.sum()),
        "converged": int((read(prefix + "search_converged")[done] == 1).sum()),
        "likelihood_evaluations": spread("search_likelihood_evaluations"),
        "effective_samples": spread("search_effective_samples"),
        "log_evidence_error": spread("search_log_evidence_error"),
        "likelihood_seconds": spread("search_likelihood_seconds") if timed else None,
        "sampler_seconds": spread("search_sampler_seconds") if timed else None,
    }


def throughput(store: ResultStore, read: _Reads, status: np.ndarray, runs: list[Mapping]) -> dict:
    """datasets_per_hour (wall clock, over the runs' active spans) and datasets_per_actor_hour (see the module
    docstring), with the numbers they come from."""
    committed = status != Status.PENDING
    wall = read("wall_time")
    timed = committed & np.isfinite(wall)
    fit_seconds = float(wall[timed].sum())
    out = {
        "committed": int(committed.sum()),
        "fit_seconds": fit_seconds,
        "datasets_per_actor_hour": 3600 * int(timed.sum()) / fit_seconds if fit_seconds > 0 else None,
        "elapsed_seconds": None,
        "datasets_per_hour": None,
        "last_commit_utc": None,
    }
    times = commit_times(store)
    if not times or not committed.any():
        return out
    blocks = np.arange(store.n_datasets) // store.block_size
    block_time = np.array([times.get(int(k), math.nan) for k in blocks])
    if runs and "driver_run" in store.names:
        driver_run = read("driver_run")
        spans = []
        for number, record in enumerate(runs, start=1):
            mine = committed & (driver_run == number) & np.isfinite(block_time)
            if mine.any() and record.get("started_utc"):
                spans.append((int(mine.sum()), float(block_time[mine].max()) - _epoch(record["started_utc"])))
    elif store.attrs.get("created"):
        mine = committed & np.isfinite(block_time)
        spans = [(int(mine.sum()), float(block_time[mine].max()) - _epoch(store.attrs["created"]))] if mine.any() else []
    else:
        spans = []
    elapsed = sum(max(s, 0.0) for _, s in spans)
    out["last_commit_utc"] = datetime.fromtimestamp(max(times.values()), UTC).isoformat(timespec="seconds")
    if spans and elapsed > 0:
        out["elapsed_seconds"] = elapsed
        out["datasets_per_hour"] = 3600 * sum(n for n, _ in spans) / elapsed
    return out


def worst_fits(store: ResultStore, read: _Reads, ids: np.ndarray, status: np.ndarray, n: int) -> list[dict]:
    """The `n` DONE lenses with the highest reduced χ², reading normalized_residuals one block at a time."""
    done = status == Status.DONE
    if not done.any():
        return []
    pixels = np.zeros(store.n_datasets, np.int64)
    residuals = store.array("normalized_residuals")
    for k in sorted({int(i) // store.block_size for i in np.flatnonzero(done)}):
        block = store.block_slice(k)
        try:
            pixels[block] = np.isfinite(residuals[block]).reshape(block.stop - block.start, -1).sum(axis=1)
        except Exception as e:  # a damaged chunk: its lenses are left out of the ranking
            read.note("normalized_residuals", {k: f"{type(e).__name__}: {e}"})
    chi_squared = read("chi_squared")
    merit = read("figure_of_merit")
    with np.errstate(divide="ignore", invalid="ignore"):
        reduced = np.where(done & (pixels > 0), chi_squared / pixels, np.nan)
    order = [int(i) for i in np.argsort(-np.nan_to_num(reduced, nan=-np.inf)) if np.isfinite(reduced[i])][:n]
    return [
        {
            "id": str(ids[i]),
            "reduced_chi_squared": float(reduced[i]),
            "chi_squared": float(chi_squared[i]),
            "pixels": int(pixels[i]),
            "figure_of_merit": float(merit[i]),
        }
        for i in order
    ]


def error_reason(message: str, dataset_id: str) -> str:
    """The reason of an error message, stripped of what differs between lenses (see the module docstring)."""
    text = message.strip()
    prefix = f"dataset {dataset_id}: "
    if text.startswith(prefix):
        text = text[len(prefix):]
        where, sep, rest = text.partition(": ")
        if sep and ("/" in where or "\\" in where or where.endswith((".fits", ".fit", "]"))):
            text = f"{posixpath.basename(where.replace(chr(92), '/').rstrip('/'))}: {rest}"
    if dataset_id:
        text = text.replace(dataset_id, "<id>")
    return _NUMBER.sub("N", text)


def error_groups(ids: np.ndarray, status: np.ndarray, errors: list[str]) -> list[dict]:
    """FAILED and INVALID datasets grouped by (status, reason), largest group first."""
    groups: dict[tuple[str, str], dict] = {}
    for i in np.flatnonzero((status == Status.FAILED) | (status == Status.INVALID)):
        name = Status(int(status[i])).name
        message = str(errors[i]) or "(no reason recorded)"
        key = (name, error_reason(message, str(ids[i])))
        group = groups.setdefault(key, {"status": name, "reason": key[1], "count": 0, "ids": [], "example": message})
        group["count"] += 1
        if len(group["ids"]) < ERROR_IDS_SHOWN:
            group["ids"].append(str(ids[i]))
    return sorted(groups.values(), key=lambda g: (-g["count"], g["status"], g["reason"]))


def format_summary(summary: dict) -> str:
    """The text `lensfleet status` prints."""
    c, b, t = summary["counts"], summary["blocks"], summary["throughput"]
    n = summary["datasets"]
    lines = [
        f"store      {summary['store']}",
        f"datasets   {n}: {c['done']} done, {c['failed']} failed, {c['invalid']} invalid, {c['pending']} pending "
        f"({_percent(n - c['pending'], n)} committed)",
        f"blocks     {b['committed']}/{b['total']} committed (block size {summary['block_size']}), "
        f"{summary['driver_runs']} driver run(s)",
    ]
    if t["datasets_per_hour"] is not None:
        lines.append(f"throughput {t['datasets_per_hour']:.1f} datasets/hour over {t['elapsed_seconds']:.0f} s of "
                     f"runs (last commit {t['last_commit_utc']})")
    if t["datasets_per_actor_hour"] is not None:
        lines.append(f"           {t['datasets_per_actor_hour']:.1f} datasets per actor-hour "
                     f"({t['fit_seconds']:.1f} actor-seconds)")
    for stage in summary.get("stages") or [{"name": None, "search": summary.get("search")}]:
        if stage["name"] is not None:
            lines.append(f"stage      {stage['name']}: {stage['done']} done, {stage['failed']} failed"
                         + ("" if stage.get("search") else " (evaluated at the stage before's maximum likelihood)"))
            if stage.get("positions"):
                lines.append(f"           positions likelihood on {stage['positions']['applied']}, off on "
                             f"{stage['positions']['too_few_images']} (fewer than two images found)")
        search = stage.get("search")
        if search and search["searched"]:
            e, s, z = search["likelihood_evaluations"], search["effective_samples"], search["log_evidence_error"]
            lines += [
                f"search     {search['converged']}/{search['searched']} searches met their stopping criteria; per "
                f"lens: {e['median']:,.0f} likelihood evaluations ({e['min']:,.0f}–{e['max']:,.0f}),",
                f"           effective samples {s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f}), log-evidence "
                f"error {z['median']:.3f} ({z['min']:.3f}–{z['max']:.3f})",
            ]
            li, sa = search.get("likelihood_seconds"), search.get("sampler_seconds")
            if li and sa:
                lines.append(f"           time per lens: likelihood {li['median']:,.1f} s ({li['min']:,.1f}–"
                             f"{li['max']:,.1f}), sampler {sa['median']:,.1f} s ({sa['min']:,.1f}–{sa['max']:,.1f})")
    if summary["worst_fits"]:
        lines += ["", "worst fits (highest reduced chi-squared = chi_squared / pixels in the mask)",
                  f"  {'id':<24} {'chi2/N':>9} {'pixels':>7} {'figure_of_merit':>16}"]
        lines += [f"  {w['id']:<24} {w['reduced_chi_squared']:>9.3f} {w['pixels']:>7d} {w['figure_of_merit']:>16.2f}"
                  for w in summary["worst_fits"]]
    if summary["unreadable"]:
        lines += ["", f"unreadable chunks (read as fill; a damaged status chunk as PENDING): {len(summary['unreadable'])}"]
        lines += [f"  {u['array']} block {u['block']}: {u['error'][:160]}" for u in summary["unreadable"][:20]]
    verified = summary["verify"]
    if verified is not None:
        corrupt = verified["corrupt"]
        lines += ["", f"verify     {verified['blocks_checked']} committed blocks re-read: "
                  + (f"{len(corrupt)} corrupt (a resume refits them)" if corrupt else "all match their checksums")]
        lines += [f"  block {c['block']} ({', '.join(c['datasets'][:4])}{', ...' if len(c['datasets']) > 4 else ''})"
                  f": {c['reason']}" for c in corrupt]
    if summary["errors"]:
        lines += ["", "errors by reason"]
        for g in summary["errors"]:
            more = "" if g["count"] <= len(g["ids"]) else f", +{g['count'] - len(g['ids'])} more"
            lines.append(f"  {g['count']:>5} {g['status']:<8} {g['reason']}")
            lines.append(f"        {'':<8} ids: {', '.join(g['ids'])}{more}")
    return "\n".join(lines)


def _percent(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "0%"


def _epoch(iso: str) -> float:
    stamp = datetime.fromisoformat(iso)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def commit_times(store: ResultStore) -> dict[int, float]:
    """{block k: modification time (epoch seconds) of status chunk k} for the committed blocks' chunks that the
    file system reports times for (local: mtime; S3: LastModified; GCS: updated)."""
    try:
        fs, root = filesystem(store.url.removeprefix("file://"), store.storage_options)
        listing = fs.ls(posixpath.join(root, "status", "c"), detail=True)
    except (FileNotFoundError, OSError, NotImplementedError):
        return {}
    times = {}
    for entry in listing:
        name = posixpath.basename(entry["name"].rstrip("/"))
        if not name.isdigit():
            continue
        stamp = entry.get("mtime") or entry.get("LastModified") or entry.get("updated") or entry.get("last_modified")
        if isinstance(stamp, str):
            stamp = _epoch(stamp.replace("Z", "+00:00"))
        elif isinstance(stamp, datetime):
            stamp = stamp.timestamp()
        if stamp is not None:
            times[int(name)] = float(stamp)
    return times
