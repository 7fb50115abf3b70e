"""Every way one lens's files can fail is that lens's outcome, classified (issue 11, points 2, 3 and 10): bad
bytes are DatasetError (INVALID), a file that could not be fetched is DatasetUnavailable (retried, then FAILED),
never the other way round. Real FITS files, gzip streams and a real HTTP server on this machine."""

from __future__ import annotations

import errno
import gzip
import http.server
import threading
from functools import partial

import numpy as np
import pytest
from astropy.io import fits

from storage.datasets import load_imaging, read_shapes, write_imaging, write_imaging_mef
from storage.errors import (
    DatasetError,
    DatasetUnavailable,
    Fault,
    StoreError,
    classify,
    retry_transient,
)

ID = "J0"


def gzipped(folder, name):
    path = folder / name
    path.write_bytes(gzip.compress(path.read_bytes()))
    return path


def test_gzipped_files_load_like_plain_ones(tmp_path, arrays):
    for name in ("plain", "packed"):
        write_imaging(str(tmp_path / name), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05)
    for file in ("image.fits", "noise_map.fits", "psf.fits"):
        gzipped(tmp_path / "packed", file)
    plain, packed = load_imaging(str(tmp_path / "plain"), ID), load_imaging(str(tmp_path / "packed"), ID)
    for name in ("image", "noise_map", "psf"):
        np.testing.assert_array_equal(getattr(packed, name), getattr(plain, name))
    assert read_shapes(str(tmp_path / "packed"), ID) == read_shapes(str(tmp_path / "plain"), ID)


@pytest.mark.parametrize("damage, reason", [
    ("near its start", "corrupted gzip data (error: "),
    ("mid-stream", "corrupted gzip data (error: "),
    ("cut short", "gzip data ends before its end-of-stream marker (truncated)"),
])
def test_a_corrupted_gzip_is_bad_input_for_headers_and_pixels_alike(tmp_path, arrays, damage, reason):
    write_imaging(str(tmp_path / ID), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05)
    image = gzipped(tmp_path / ID, "image.fits")
    packed = bytearray(image.read_bytes())
    if damage == "cut short":
        packed = packed[: len(packed) // 2]
    else:
        at = 12 if damage == "near its start" else len(packed) // 2
        packed[at:at + 8] = bytes(b ^ 0xA5 for b in packed[at:at + 8])
    image.write_bytes(bytes(packed))
    for read in (read_shapes, load_imaging):
        with pytest.raises(DatasetError) as caught:
            read(str(tmp_path / ID), ID)
        assert caught.value.path == str(image) and reason in caught.value.reason
        assert classify(caught.value) is Fault.BAD_INPUT


def test_a_small_gzip_announcing_a_huge_image_is_refused_without_allocating_it(tmp_path, arrays):
    write_imaging(str(tmp_path / ID), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05)
    header = fits.Header([("SIMPLE", True), ("BITPIX", -64), ("NAXIS", 2), ("NAXIS1", 20000), ("NAXIS2", 20000)])
    (tmp_path / ID / "image.fits").write_bytes(gzip.compress(header.tostring().encode()))
    for read in (read_shapes, load_imaging):
        with pytest.raises(DatasetError, match=r"truncated: HDU 0 ends at byte \d+, the file holds 2880 bytes"):
            read(str(tmp_path / ID), ID)


def test_zero_padding_after_the_last_hdu_is_allowed_other_bytes_are_not(tmp_path, arrays):
    write_imaging(str(tmp_path / ID), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05)
    psf = tmp_path / ID / "psf.fits"
    raw = psf.read_bytes()
    psf.write_bytes(raw + bytes(2880))
    np.testing.assert_array_equal(load_imaging(str(tmp_path / ID), ID).psf, arrays["psf"])
    psf.write_bytes(raw + b"GARBAGE!" * 13)
    with pytest.raises(DatasetError, match="the 104 bytes after the last complete HDU do not form an HDU"):
        load_imaging(str(tmp_path / ID), ID)


class FlakyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; the first `failures` requests get 503, a request for a missing file 404."""

    def __init__(self, *args, state, **kwargs):
        self.state = state
        super().__init__(*args, **kwargs)

    def send_head(self):
        with self.state["lock"]:
            self.state["requests"] += 1
            failing = self.state["requests"] <= self.state["failures"]
        if failing:
            self.send_error(503, "busy")
            return None
        return super().send_head()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, arrays):
    """An HTTP server on 127.0.0.1 serving one MEF lens; yields (its URL, the server's state)."""
    write_imaging_mef(str(tmp_path / "lens.fits"), arrays["image"], arrays["noise_map"], arrays["psf"], 0.05)
    state = {"lock": threading.Lock(), "requests": 0, "failures": 0}
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(FlakyHandler, directory=str(tmp_path), state=state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state, httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_lens_over_http_loads_and_a_stopped_server_is_transient_never_invalid(server, arrays):
    url, state, httpd = server
    data = load_imaging(f"{url}/lens.fits", ID)
    np.testing.assert_array_equal(data.image, arrays["image"])
    with pytest.raises(DatasetError, match="no such file or folder"):  # a 404 is the lens's
        load_imaging(f"{url}/other.fits", ID)

    httpd.shutdown()
    httpd.server_close()  # the server stops: nothing listens on the port any more
    for read in (read_shapes, load_imaging):
        with pytest.raises(DatasetUnavailable) as caught:
            read(f"{url}/lens.fits", ID)
        assert caught.value.path == f"{url}/lens.fits" and "could not be read (ClientConnectorError" in str(caught.value)
        assert classify(caught.value) is Fault.TRANSIENT and caught.value.environment is False


def test_a_transient_failure_is_retried_per_lens_and_then_raised(server, arrays):
    url, state, _ = server
    state["failures"] = 4  # HEAD and GET of fsspec's info, twice: two failed tries, the third succeeds
    data = retry_transient(lambda: load_imaging(f"{url}/lens.fits", ID), attempts=3, delay=0.01)
    np.testing.assert_array_equal(data.psf, arrays["psf"])
    state.update(requests=0, failures=100)
    with pytest.raises(DatasetUnavailable):
        retry_transient(lambda: load_imaging(f"{url}/lens.fits", ID), attempts=3, delay=0.01)
    assert state["requests"] == 3 * 2  # three tries, each a HEAD and a GET; then it gave up
    calls = []

    def bad_input():
        calls.append(1)
        raise DatasetError(ID, "x", "bad")

    with pytest.raises(DatasetError):
        retry_transient(bad_input, attempts=3, delay=0.01)
    assert len(calls) == 1  # bad input is never retried


@pytest.mark.parametrize("error, fault", [
    (OSError(errno.ENOSPC, "No space left on device"), Fault.ENVIRONMENT),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), Fault.ENVIRONMENT),
    (PermissionError(errno.EACCES, "Permission denied"), Fault.ENVIRONMENT),
    (MemoryError(), Fault.ENVIRONMENT),
    (StoreError("lease lost"), Fault.ENVIRONMENT),
    (ConnectionResetError(errno.ECONNRESET, "reset"), Fault.TRANSIENT),
    (TimeoutError(), Fault.TRANSIENT),
    (OSError(errno.EIO, "I/O error"), Fault.TRANSIENT),
    (DatasetError(ID, "x", "PSF sums to zero"), Fault.BAD_INPUT),
    (DatasetUnavailable(ID, "x", "no space", environment=True), Fault.ENVIRONMENT),
    (ValueError("a bug"), Fault.ERROR),
])
def test_classification(error, fault):
    assert classify(error) is fault
    try:  # a generic wrapper is classified by what it wraps
        try:
            raise error
        except BaseException as inner:
            raise RuntimeError("while committing") from inner
    except RuntimeError as outer:
        assert classify(outer) is fault
