"""Survey catalogs in ECSV, FITS table and CSV: ids, resolved paths, optional columns, per-lens parameters, hash."""

import json
import os

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from storage.catalog import CatalogEntry, flatten_params, read_catalog, unflatten_params, write_catalog
from storage.errors import CatalogError

FORMATS = {"ecsv": "ascii.ecsv", "fits": "fits", "csv": "ascii.csv"}
PARAMS = {
    "lens": {
        "mass": {"centre": [0.01, -0.02], "ell_comps": [0.05, 0.1], "einstein_radius": 1.6},
        "shear": {"gamma_1": 0.003, "gamma_2": -0.03},
    },
    "source": {"centre": [0.1, 0.07]},
}


def survey_table(tmp_path) -> Table:
    """Three lenses: relative folder, relative MEF file in a subfolder, absolute path; gaps in optional cells."""
    table = Table()
    table["id"] = ["A0", "B0", "C7"]
    table["path"] = ["A0", "cutouts/B0.fits", str(tmp_path / "elsewhere" / "C7")]
    table["pixel_scale"] = MaskedColumn([0.1, 0.05, np.nan], mask=[False, True, False])
    table["mask_radius"] = [3.0, 2.2, np.nan]
    table["ra"] = [150.1, 150.2, 150.3]  # other survey columns are ignored
    for name, value in flatten_params(PARAMS).items():
        table[name] = MaskedColumn([value, value * 2, np.nan], mask=[False, False, True])
    return table


@pytest.mark.parametrize("suffix", FORMATS)
def test_each_format_reads_the_same_entries(tmp_path, suffix):
    path = tmp_path / f"survey.{suffix}"
    survey_table(tmp_path).write(path, format=FORMATS[suffix])
    catalog = read_catalog(str(path))

    assert catalog.ids == ["A0", "B0", "C7"] and len(catalog) == 3 and catalog.path == str(path)
    a0, b0, c7 = catalog.entries
    assert a0.path == str(tmp_path / "A0")
    assert b0.path == str(tmp_path / "cutouts" / "B0.fits")
    assert c7.path == str(tmp_path / "elsewhere" / "C7")
    assert (a0.pixel_scale, b0.pixel_scale, c7.pixel_scale) == (0.1, None, None)
    assert (a0.mask_radius, b0.mask_radius, c7.mask_radius) == (3.0, 2.2, None)
    assert a0.params == PARAMS
    assert b0.params["lens"]["mass"]["centre"] == [0.02, -0.04]
    assert c7.params is None
    assert len(catalog.hash) == 64


def test_csv_written_by_hand_with_integer_ids_and_empty_cells(tmp_path):
    (tmp_path / "survey.csv").write_text(
        "id,path,pixel_scale,lens.mass.centre.0,lens.mass.centre.1\n"
        "101,lenses/101,0.05,0.1,0.2\n"
        "102,s3://survey-bucket/lenses/102.fits,,,\n"
    )
    catalog = read_catalog(str(tmp_path / "survey.csv"))
    assert catalog.ids == ["101", "102"]
    assert catalog.entries[0] == CatalogEntry(
        "101", str(tmp_path / "lenses" / "101"), 0.05, None, {"lens": {"mass": {"centre": [0.1, 0.2]}}}
    )
    assert catalog.entries[1] == CatalogEntry("102", "s3://survey-bucket/lenses/102.fits", None, None, None)


def test_csv_ids_are_text_as_written_never_type_guessed(tmp_path):
    (tmp_path / "survey.csv").write_text("id,path,mask_radius\n007,a,1.5\n7,b,\n1e3,c,2\n0x1F,d,nan\n")
    catalog = read_catalog(str(tmp_path / "survey.csv"))
    assert catalog.ids == ["007", "7", "1e3", "0x1F"]  # 007 and 7 are two lenses; 1e3 is not 1000.0
    assert [e.mask_radius for e in catalog.entries] == [1.5, None, 2.0, None]


def test_a_params_column_names_params_json_files_relative_or_absolute(tmp_path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "A0.json").write_text(json.dumps(PARAMS))
    absolute = tmp_path / "shared_params.json"
    absolute.write_text(json.dumps({"lens": {"mass": {"einstein_radius": 1.2}}}))
    table = Table(
        {"id": ["A0", "B0", "C0"], "path": ["A0", "B0", "C0"], "params": ["params/A0.json", str(absolute), ""]}
    )
    table.write(tmp_path / "survey.ecsv")

    entries = read_catalog(str(tmp_path / "survey.ecsv")).entries
    assert entries[0].params == PARAMS
    assert entries[1].params == {"lens": {"mass": {"einstein_radius": 1.2}}}
    assert entries[2].params is None


def test_the_hash_covers_the_catalog_and_every_params_file_it_references(tmp_path):
    (tmp_path / "A0.json").write_text(json.dumps(PARAMS))
    Table({"id": ["A0"], "path": ["A0"], "params": ["A0.json"]}).write(tmp_path / "survey.ecsv")
    first = read_catalog(str(tmp_path / "survey.ecsv")).hash
    assert read_catalog(str(tmp_path / "survey.ecsv")).hash == first

    (tmp_path / "A0.json").write_text(json.dumps({**PARAMS, "source": {"centre": [0.0, 0.0]}}))
    changed_params = read_catalog(str(tmp_path / "survey.ecsv")).hash
    Table({"id": ["A0"], "path": ["A0-v2"], "params": ["A0.json"]}).write(tmp_path / "survey.ecsv", overwrite=True)
    changed_catalog = read_catalog(str(tmp_path / "survey.ecsv")).hash
    assert len({first, changed_params, changed_catalog}) == 3


@pytest.mark.parametrize("suffix", FORMATS)
def test_write_catalog_round_trips_and_writes_local_paths_relative(tmp_path, suffix):
    entries = (
        CatalogEntry("A0", str(tmp_path / "lenses" / "A0"), 0.1, 3.0, PARAMS),
        CatalogEntry("B0", "gs://bucket/B0.fits", None, 2.5, {"lens": {"mass": {"einstein_radius": 1.1}}}),
        CatalogEntry("C0", "/data/other/C0.fits", 0.05, None, None),
    )
    path = tmp_path / f"survey.{suffix}"
    write_catalog(str(path), entries)
    assert list(Table.read(path, format=FORMATS[suffix])["path"]) == [
        os.path.join("lenses", "A0"),
        "gs://bucket/B0.fits",
        "/data/other/C0.fits",
    ]
    assert read_catalog(str(path)).entries == entries


def test_a_relative_path_is_relative_to_the_catalog_whatever_the_working_directory(tmp_path, monkeypatch):
    """A relative entry path already means "relative to the catalog's folder": it is written as given, not
    re-based on the process's working directory (which once turned "lenses/A0" into "cwd-name/lenses/A0" when
    the working directory lay inside the catalog's folder)."""
    (tmp_path / "checkout").mkdir()
    monkeypatch.chdir(tmp_path / "checkout")
    path = tmp_path / "catalog.ecsv"
    write_catalog(str(path), [CatalogEntry("A0", "lenses/A0")])
    assert list(Table.read(path, format="ascii.ecsv")["path"]) == ["lenses/A0"]
    assert read_catalog(str(path)).entries[0].path == str(tmp_path / "lenses" / "A0")


@pytest.mark.parametrize(
    "columns, message",
    [
        ({"id": ["A", "B", "A"], "path": ["a", "b", "c"]}, "duplicate id 'A' in rows 1 and 3"),
        ({"id": ["A", " ", "C"], "path": ["a", "b", "c"]}, "row 2: empty id"),
        ({"id": ["A", "B"], "path": ["a", ""]}, "row 2 (id 'B'): empty path"),
        ({"id": ["A"], "file": ["a"]}, "missing required column(s) ['path']"),
        ({"id": ["A"], "path": ["a"], "pixel_scale": ["big"]}, "row 1 (id 'A'): pixel_scale 'big' is not a number"),
        ({"id": ["A"], "path": ["a"], "lens.mass.centre.1": [0.1]}, "row 1 (id 'A'): parameter 'lens.mass.centre'"),
        ({"id": ["A"], "path": ["a"], "params": ["p.json"], "lens.x": [1.0]}, "either as a params column"),
        ({"id": ["A"], "path": ["a"], "params": ["missing.json"]}, "row 1 (id 'A'): params file"),
        ({"id": [], "path": []}, "no rows"),
    ],
    ids=[
        "duplicate",
        "empty id",
        "empty path",
        "missing column",
        "bad number",
        "index gap",
        "both",
        "no params file",
        "empty",
    ],
)
def test_catalog_problems_stop_everything_before_any_work(tmp_path, columns, message):
    path = tmp_path / "survey.ecsv"
    Table(columns, dtype=[str] * len(columns) if not columns["id"] else None).write(path)
    with pytest.raises(CatalogError) as raised:
        read_catalog(str(path))
    assert str(raised.value).startswith(f"catalog {path}: ")
    assert message in str(raised.value)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(CatalogError, match=r"unknown catalog format '\.txt'"):
        read_catalog(str(tmp_path / "survey.txt"))
    with pytest.raises(CatalogError, match="file not found"):
        read_catalog(str(tmp_path / "survey.ecsv"))


def test_flatten_and_unflatten_are_inverse_and_name_vectors_by_index():
    flat = flatten_params(PARAMS)
    assert flat["lens.mass.centre.0"] == 0.01 and flat["lens.mass.centre.1"] == -0.02
    assert flat["lens.shear.gamma_1"] == 0.003 and flat["source.centre.1"] == 0.07
    assert unflatten_params(flat) == PARAMS
    nested = {"grid": [[1.0, 2.0], [3.0, 4.0]]}
    assert flatten_params(nested) == {"grid.0.0": 1.0, "grid.0.1": 2.0, "grid.1.0": 3.0, "grid.1.1": 4.0}
    assert unflatten_params(flatten_params(nested)) == nested


@pytest.mark.parametrize(
    "flat, message",
    [
        ({"a.0": 1.0, "a.2": 2.0}, "parameter 'a' has indices ['0', '2']"),
        ({"a.0": 1.0, "a.x": 2.0}, "parameter 'a' has indices"),
        ({"a": 1.0, "a.b": 2.0}, "'a.b' extends the value 'a'"),
        ({"a..b": 1.0}, "has an empty part"),
    ],
)
def test_unflatten_refuses_ambiguous_names(flat, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        unflatten_params(flat)


def test_flatten_refuses_non_numbers():
    with pytest.raises(ValueError, match="parameter 'lens.mass.type' is not a number"):
        flatten_params({"lens": {"mass": {"type": "Isothermal"}}})
