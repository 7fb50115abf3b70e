"""`lensfleet evaluate` on a reference lens gives PyAutoLens's numbers; bad input exits with one clear line.

The happy path runs the installed command in a subprocess; the bad inputs call the same `main` in-process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from scheduler.cli import main
from shared_data import REFERENCE

A0 = REFERENCE / "datasets" / "A0"
MGE_TOML = """
[dataset]
mask_radius = 3.0
over_sample_size_lp = 2
over_sample_size_pixelization = 2

[lens.mass]
type = "isothermal"

[lens.shear]

[source]
type = "mge"
gaussians = 20
sigma_min = 0.01

[settings]
use_positive_only_solver = true
"""


def lensfleet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], capture_output=True, text=True, timeout=300)


def truth_params() -> dict:
    truth = json.loads((A0 / "truth.json").read_text())
    source = truth["sources"][0]
    return {
        "lens": {"mass": {k: truth["mass"][k] for k in ("centre", "ell_comps", "einstein_radius")},
                 "shear": {k: truth["shear"][k] for k in ("gamma_1", "gamma_2")}},
        "source": {"centre": source["centre"], "ell_comps": source["ell_comps"]},
    }


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "fit.toml").write_text(MGE_TOML)
    (tmp_path / "params.json").write_text(json.dumps(truth_params()))
    shutil.copytree(A0, tmp_path / "A0")
    return tmp_path


def test_evaluate_writes_pyautolens_numbers_and_a_picture(inputs):
    out, plot = inputs / "result.json", inputs / "fit.png"
    run = lensfleet("evaluate", str(inputs / "A0"), "--config", str(inputs / "fit.toml"),
                    "--params", str(inputs / "params.json"), "--out", str(out), "--plot", str(plot))
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    reference = json.loads((REFERENCE / "reference.json").read_text())["datasets"]["A0"]["cases"]["mge_pos"]["true"]
    for term, value in reference["numpy"].items():
        if term in result:
            assert abs(result[term] - value) <= 1e-4, term
    model_image = np.load(REFERENCE / reference["model_image_file"])
    assert np.abs(np.array(result["model_image"]) - model_image).max() <= 1e-6 * np.abs(model_image).max()
    assert len(result["reconstruction"]) == 20
    assert plot.stat().st_size > 20_000 and plot.read_bytes()[:4] == b"\x89PNG"


def _edit_fits(path: Path, edit) -> None:
    with fits.open(path, mode="update") as hdul:
        hdul[0].data = edit(hdul[0].data.astype(float))


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda d: (d / "A0" / "psf.fits").unlink(), "psf.fits: file not found"),
        (lambda d: _edit_fits(d / "A0" / "image.fits", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 5050, np.nan, a)),
         "image.fits: image has 1 NaN/inf pixels among the used pixels"),
        (lambda d: _edit_fits(d / "A0" / "noise_map.fits", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 5050, 0.0, a)),
         "noise_map.fits: noise_map has 1 <= 0 pixels among the used pixels"),
        (lambda d: _edit_fits(d / "A0" / "psf.fits", lambda a: a[:10, :10]), "psf.fits: PSF shape (10, 10) has an even side"),
        (lambda d: _edit_fits(d / "A0" / "psf.fits", lambda a: a - a.mean()), "psf.fits: PSF sums to zero"),
        (lambda d: _edit_fits(d / "A0" / "psf.fits", lambda a: np.pad(a, 50)), "psf.fits: PSF shape (111, 111) is larger than the image"),
        (lambda d: (d / "fit.toml").write_text(MGE_TOML + "\nsub_size = 3\n"), "fit.toml: settings.sub_size: unknown key"),
        (lambda d: (d / "params.json").write_text(json.dumps({"lens": {"mass": {}}})), "missing parameter lens.mass.centre"),
    ],
    ids=["missing-file", "nan", "noise-zero", "even-psf", "zero-sum-psf", "psf-too-big", "config-key", "missing-param"],
)
def test_bad_input_exits_nonzero_with_one_line_naming_file_and_problem(inputs, breakage, expected, capsys):
    breakage(inputs)
    code = main(["evaluate", str(inputs / "A0"), "--config", str(inputs / "fit.toml"),
                 "--params", str(inputs / "params.json")])
    stderr = capsys.readouterr().err
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lensfleet: error: "), stderr
    assert expected in lines[0]


EUCLID = REFERENCE.parent / "real" / "euclid_q1" / "102018665_NEG570040238507752998"


def test_evaluate_reads_the_euclid_band_asked_for_and_names_the_bands_of_a_missing_one(inputs, capsys):
    picture = inputs / "nir_h.png"
    assert main(["evaluate", str(EUCLID), "--config", str(inputs / "fit.toml"), "--params",
                 str(inputs / "params.json"), "--band", "NIR_H", "--out", str(inputs / "h.json"),
                 "--plot", str(picture)]) == 0
    record = json.loads((inputs / "h.json").read_text())
    info = json.loads((EUCLID / "info.json").read_text())
    with fits.open(EUCLID / f"{EUCLID.name}.fits") as hdus:
        image = hdus["NIR_H_BGSUB"].data
        extra = fits.getdata(EUCLID / "mask_extra_galaxies.fits") != 0
    n = image.shape[0]
    r = np.hypot(*np.meshgrid((np.arange(n) - (n - 1) / 2) * info["pixel_scale"],
                              (np.arange(n) - (n - 1) / 2) * info["pixel_scale"], indexing="ij"))
    used = (r <= info["mask_radius"]) & ~extra  # info.json's radius, not fit.toml's 3.0″, and the extra galaxies out
    assert len(record["model_image"]) == int(used.sum()) and np.isfinite(record["figure_of_merit"])
    assert picture.stat().st_size > 20_000
    capsys.readouterr()
    assert main(["evaluate", str(EUCLID), "--config", str(inputs / "fit.toml"), "--params",
                 str(inputs / "params.json"), "--band", "NIR_Q"]) == 2
    err = capsys.readouterr().err
    assert "NIR_Q" in err and "VIS" in err and "NIR_H" in err and EUCLID.name in err, err
