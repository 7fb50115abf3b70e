"""`lensfleet run`'s options are RunOptions: its defaults come from there (one source of truth), and what is
given on the command line reaches the driver unchanged."""

from __future__ import annotations

import pytest

from scheduler.cli import build_parser, run_options
from scheduler.driver import RunOptions
from storage.lease import DEFAULT_TTL

REQUIRED = ["run", "catalog.ecsv", "--config", "fit.toml", "--store", "results.zarr"]


def test_run_without_options_is_runoptions_defaults():
    args = build_parser().parse_args(REQUIRED)
    assert run_options(args) == RunOptions(catalog="catalog.ecsv", config="fit.toml", store="results.zarr")


def test_given_options_reach_the_driver_and_the_help_shows_the_defaults(capsys):
    argv = [*REQUIRED, "--lease-ttl", "7.5", "--actors", "2", "--block-size", "4", "--restart", "--address", "auto"]
    expected = RunOptions(catalog="catalog.ecsv", config="fit.toml", store="results.zarr", lease_ttl=7.5, actors=2,
                          block_size=4, restart=True, address="auto")
    assert run_options(build_parser().parse_args(argv)) == expected
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = RunOptions(catalog="", config="", store="")
    assert f"expires (default {DEFAULT_TTL:g})" in text and DEFAULT_TTL == defaults.lease_ttl
    assert f"(default {defaults.block_size}; a resumed store keeps its own)" in text
    assert f"marked failed (default {defaults.max_attempts})" in text
    assert f"SIGTERM/SIGINT (default {defaults.grace_period:g})" in text
