"""Every command-line value is range-checked before any work (issue 11, point 9): an out-of-range option is a
usage error (exit status 2, naming the option and its range) and a fit.toml with an absurd value is refused
(exit status 2) before a lease is taken or a store created."""

from __future__ import annotations

import pytest

from scheduler.cli import main
from small_survey import FIT_TOML


@pytest.mark.parametrize("option, value, message", [
    ("--block-size", "0", "must be an integer >= 1 and <= 4096, got 0"),
    ("--block-size", "1e9", "must be an integer, got '1e9'"),
    ("--lease-ttl", "0", "must be a finite number >= 1, got 0"),
    ("--lease-ttl", "nan", "must be a finite number >= 1, got nan"),
    ("--grace-period", "-1", "must be a finite number >= 0, got -1"),
    ("--scale-up-timeout", "inf", "must be a finite number >= 0, got inf"),
    ("--max-attempts", "0", "must be an integer >= 1, got 0"),
    ("--actors", "0", "must be an integer >= 1, got 0"),
    ("--cpus-per-actor", "0", "must be a finite number > 0, got 0"),
    ("--gpus-per-actor", "-0.5", "must be a finite number >= 0, got -0.5"),
])
def test_an_out_of_range_run_option_is_a_usage_error_before_any_work(tmp_path, capsys, option, value, message):
    store = tmp_path / "results.zarr"
    with pytest.raises(SystemExit) as exited:
        main(["run", "catalog.ecsv", "--config", "fit.toml", "--store", str(store), option, value])
    assert exited.value.code == 2
    assert f"lensfleet run: error: argument {option}: {message}" in capsys.readouterr().err
    assert not store.exists()


def test_a_nan_in_fit_toml_stops_the_run_before_the_store_exists(tmp_path, capsys):
    (tmp_path / "fit.toml").write_text(FIT_TOML.replace("sigma_min = 0.02", "sigma_min = nan"))
    (tmp_path / "catalog.ecsv").write_text("# %ECSV 1.0\n# ---\n# datatype:\n# - {name: id, datatype: string}\n"
                                           "# - {name: path, datatype: string}\nid path\nA0 A0\n")
    store = tmp_path / "results.zarr"
    code = main(["run", str(tmp_path / "catalog.ecsv"), "--config", str(tmp_path / "fit.toml"), "--store", str(store)])
    assert code == 2
    assert "source.sigma_min: must be a finite number, got nan" in capsys.readouterr().err
    assert not store.exists()


def test_status_worst_must_not_be_negative(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["status", str(tmp_path), "--worst", "-1"])
    assert exited.value.code == 2 and "argument --worst: must be an integer >= 0" in capsys.readouterr().err
