"""`lensfleet status`: counts, throughput, worst fits and errors by reason, read from a store built by hand
(ResultStore.create + write_block, the way actors and the driver commit; no Ray)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import numpy as np
import pytest

from scheduler.cli import main
from scheduler.status import error_reason, summarize
from storage.schema import ArraySpec, Status, result_specs
from storage.store import ResultStore

IDS = [f"s{i}" for i in range(10)]  # block size 3: blocks 0..2 committed, block 3 (s9) pending
RUN_1 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
RUN_2 = RUN_1 + 3600
PSF_ZERO = "dataset {0}: /data/lenses/{0}/psf.fits: PSF sums to zero"
NAN_PIXELS = "dataset s5: /data/lenses/s5/image.fits: image has 3 NaN/inf pixels among the used pixels, first at (y, x) = (5, 7)"
GAVE_UP = "block 2 failed 3 times; last error: actor lensfleet-fit-0 died: boom"


def residuals(pixels: int) -> np.ndarray:
    """A 4×4 normalised-residual image with `pixels` finite pixels (inside the 'mask')."""
    image = np.full(16, np.nan)
    image[:pixels] = 1.0
    return image.reshape(4, 4)


def commit(store: ResultStore, k: int, status, errors, wall, chi_squared, pixels, driver_run: int) -> None:
    n = len(status)
    results = {
        "chi_squared": np.asarray(chi_squared, float),
        "figure_of_merit": -np.asarray(chi_squared, float),
        "normalized_residuals": np.stack([residuals(p) for p in pixels]),
        "driver_run": np.full(n, driver_run),
    }
    store.write_block(k, results, np.asarray(status, np.int8), np.ones(n, np.int32), errors, np.asarray(wall, float))


@pytest.fixture
def store_url(tmp_path):
    url = str(tmp_path / "run.zarr")
    specs = [*result_specs((4, 4), 7, 1, 20, False), ArraySpec("driver_run", dtype="int32", fill=0)]
    runs = [{"run": 1, "started_utc": datetime.fromtimestamp(RUN_1, UTC).isoformat()},
            {"run": 2, "started_utc": datetime.fromtimestamp(RUN_2, UTC).isoformat()}]
    store = ResultStore.create(url, IDS, 3, specs, {"source": {"type": "mge"}}, "hash", attrs={"runs": runs})
    D, I, F = Status.DONE, Status.INVALID, Status.FAILED
    commit(store, 0, [D, D, I], ["", "", PSF_ZERO.format("s2")], [2, 2, 2], [32, 8, np.nan], [16, 8, 0], 1)
    commit(store, 1, [D, I, I], ["", PSF_ZERO.format("s4"), NAN_PIXELS], [1, 1, 1], [12, np.nan, np.nan], [4, 0, 0], 1)
    # the driver gave up on block 2 in run 2, and commits it as the driver does (with the run that committed it)
    store.write_block(2, {"driver_run": np.full(3, 2)}, np.full(3, F, np.int8), np.full(3, 3), [GAVE_UP] * 3,
                      np.full(3, np.nan))
    for k, t in ((0, RUN_1 + 100), (1, RUN_1 + 200), (2, RUN_2 + 50)):  # commit times = status chunks' mtimes
        os.utime(os.path.join(url, "status", "c", str(k)), (t, t))
    return url


def test_counts_blocks_throughput_worst_fits_and_errors(store_url):
    summary = summarize(store_url)
    assert summary["counts"] == {"pending": 1, "done": 3, "failed": 3, "invalid": 3}
    assert summary["blocks"] == {"total": 4, "committed": 3, "pending": 1}
    assert summary["driver_runs"] == 2

    t = summary["throughput"]
    # run 1 committed 6 datasets in 200 s, run 2 three in 50 s; the hour between the runs does not count
    assert t["elapsed_seconds"] == pytest.approx(250)
    assert t["datasets_per_hour"] == pytest.approx(9 / 250 * 3600)
    # 6 datasets carry wall times (3 × 2 s + 3 × 1 s); the driver-failed block has none
    assert t["fit_seconds"] == pytest.approx(9)
    assert t["datasets_per_actor_hour"] == pytest.approx(6 / 9 * 3600)
    assert t["last_commit_utc"] == datetime.fromtimestamp(RUN_2 + 50, UTC).isoformat(timespec="seconds")

    assert [(w["id"], w["reduced_chi_squared"], w["pixels"]) for w in summary["worst_fits"]] == [
        ("s3", 3.0, 4), ("s0", 2.0, 16), ("s1", 1.0, 8)]
    assert summarize(store_url, worst=1)["worst_fits"][0]["id"] == "s3"

    assert summary["errors"] == [
        {"status": "FAILED", "reason": "block N failed N times; last error: actor lensfleet-fit-N died: boom",
         "count": 3, "ids": ["s6", "s7", "s8"], "example": GAVE_UP},
        {"status": "INVALID", "reason": "psf.fits: PSF sums to zero", "count": 2, "ids": ["s2", "s4"],
         "example": PSF_ZERO.format("s2")},
        {"status": "INVALID",
         "reason": "image.fits: image has N NaN/inf pixels among the used pixels, first at (y, x) = (N, N)",
         "count": 1, "ids": ["s5"], "example": NAN_PIXELS},
    ]


def test_the_command_prints_the_same_as_json_and_as_text(store_url, capsys):
    assert main(["status", store_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(summarize(store_url)))
    assert main(["status", store_url]) == 0
    text = capsys.readouterr().out
    for expected in ("10: 3 done, 3 failed, 3 invalid, 1 pending (90% committed)", "3/4 committed",
                     "129.6 datasets/hour", "2400.0 datasets per actor-hour", "s3", "psf.fits: PSF sums to zero",
                     "ids: s2, s4"):
        assert expected in text
    assert main(["status", store_url + "-missing"]) == 2


def test_reasons_drop_what_differs_between_lenses():
    assert error_reason("dataset J1: /a/b/J1: no such file or folder", "J1") == "<id>: no such file or folder"
    assert error_reason("dataset J1: s3://bkt/J1.fits[PSF]: PSF sums to zero", "J1") == "J1.fits[PSF]: PSF sums to zero".replace("J1", "<id>")
    assert error_reason("dataset J1: non-finite figure of merit (nan); chi_squared=1.5e+03", "J1") == (
        "non-finite figure of merit (nan); chi_squared=N")


def chunk_file(url: str, name: str, k: int) -> str:
    ndim = ResultStore.open_existing(url).array(name).ndim
    return os.path.join(url, name, "c", str(k), *["0"] * (ndim - 1))


def test_verify_finds_an_intact_store_intact(store_url, capsys):
    assert main(["status", store_url, "--verify"]) == 0
    assert "verify     3 committed blocks re-read: all match their checksums" in capsys.readouterr().out
    assert summarize(store_url, verify=True)["verify"] == {"blocks_checked": 3, "corrupt": []}


def test_verify_finds_a_flipped_byte_a_deleted_chunk_and_an_empty_status_chunk(store_url, capsys):
    path = chunk_file(store_url, "normalized_residuals", 0)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01
    open(path, "wb").write(bytes(data))
    os.remove(chunk_file(store_url, "figure_of_merit", 1))
    open(chunk_file(store_url, "status", 2), "wb").close()

    summary = summarize(store_url, verify=True)  # never crashes on the damaged status chunk
    assert summary["counts"] == {"pending": 4, "done": 3, "failed": 0, "invalid": 3}  # block 2 is not committed
    assert [(u["array"], u["block"]) for u in summary["unreadable"]] == [("status", 2), ("normalized_residuals", 0)]
    assert [w["id"] for w in summary["worst_fits"]] == ["s3"]  # block 0's lenses cannot be ranked
    corrupt = summary["verify"]["corrupt"]
    assert [(c["block"], c["datasets"]) for c in corrupt] == [(0, ["s0", "s1", "s2"]), (1, ["s3", "s4", "s5"]),
                                                              (2, ["s6", "s7", "s8"])]
    assert corrupt[0]["reason"].startswith("normalized_residuals: unreadable chunk (RuntimeError: Zstd")
    # s4 and s5 are INVALID with a NaN figure of merit: only s3's row differs once the chunk reads as NaN fill
    assert corrupt[1]["reason"].startswith("1 of 3 datasets differ from their checksum (s3)")
    assert corrupt[2]["reason"].startswith("status: unreadable chunk (RuntimeError: Zstd")

    assert main(["status", store_url, "--verify"]) == 1
    text = capsys.readouterr().out
    assert "verify     3 committed blocks re-read: 3 corrupt (a resume refits them)" in text
    assert "  block 1 (s3, s4, s5): 1 of 3 datasets differ from their checksum (s3)" in text
    assert main(["status", store_url]) == 1  # without --verify: the unreadable status chunk is still reported
    assert "unreadable chunks (read as fill; a damaged status chunk as PENDING): 2" in capsys.readouterr().out
