"""Reading one lens's FITS files in two phases, so that every failure says whose fault it is.

1. Fetch (`fetch_bytes`): the file's bytes, whole, from a local path or an fsspec URL. A missing file is the
   lens's (DatasetError "file not found"); anything else raised while fetching is the transport's or the
   machine's (DatasetUnavailable, `environment` for storage.errors.ENVIRONMENT_ERRNOS), never a verdict on the
   lens. A file over MAX_FILE_BYTES is refused (DatasetError).
2. Parse (`parse_hdus`), in memory: gzip, bzip2 and xz files are decompressed here (to at most MAX_FILE_BYTES),
   every header is read and every HDU's extent checked against the bytes held — a data unit (padded to 2880
   bytes, as FITS requires) that runs past the end is a truncated file, bytes after the last HDU that are not
   zero padding are a corrupted one — and an image HDU's announced size (NAXISn × |BITPIX|/8) must be under
   MAX_FILE_BYTES before its data is read. Any exception in this phase is the content's: DatasetError
   "truncated or unreadable FITS file (...)".

No warning filter is set and no warning captured: Python's warning state is process-wide and these readers run
on threads (planning reads a catalog on a pool), so truncation is judged from the bytes, never from a warning.
Astropy's own warnings about broken files pass through as warnings.
"""

import bz2
import io
import lzma
import math
import zlib
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from storage.errors import DatasetError, DatasetUnavailable, Fault, classify, is_missing

MAX_FILE_BYTES = 1 << 30  # one lens file, and its decompressed content, at most (1 GiB)
FITS_BLOCK = 2880
_IMAGE_HDUS = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)
_COMPRESSED = {  # magic bytes -> (format name, a new decompressor, its error types)
    b"\x1f\x8b": ("gzip", lambda: zlib.decompressobj(wbits=31), (zlib.error,)),
    b"BZh": ("bzip2", bz2.BZ2Decompressor, (OSError, ValueError)),
    b"\xfd7zXZ\x00": ("xz", lzma.LZMADecompressor, (lzma.LZMAError,)),
}


class _BadBytes(Exception):
    """A problem found in a file's bytes, described by its message alone."""


@dataclass(frozen=True, eq=False)
class FitsHdu:
    """One image HDU: EXTNAME (upper case; PRIMARY for the first), its header, the numpy shape the header
    announces (() when it holds no data) and, when read with data, that data as native-endian float64."""

    name: str
    header: fits.Header
    shape: tuple[int, ...]
    data: np.ndarray | None


def unavailable(dataset_id: str, shown: str, error: BaseException) -> DatasetUnavailable:
    """The DatasetUnavailable for a failure to fetch `shown` (environment when `error` is the machine's)."""
    return DatasetUnavailable(
        dataset_id, shown, f"could not be read ({type(error).__name__}: {error})",
        environment=classify(error) is Fault.ENVIRONMENT,
    )


def fetch_bytes(fs, fs_file: str, shown: str, dataset_id: str, optional: bool = False) -> bytes | None:
    """The bytes of one file (None for a missing `optional` one); see the module docstring for the errors."""
    try:
        with fs.open(fs_file, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError as e:
        if not is_missing(e):
            raise unavailable(dataset_id, shown, e.__cause__) from e
        if optional:
            return None
        raise DatasetError(dataset_id, shown, "file not found") from None
    except IsADirectoryError:
        raise DatasetError(dataset_id, shown, "is a folder, not a FITS file") from None
    except Exception as e:  # the transport's or the machine's: fetching is all I/O
        raise unavailable(dataset_id, shown, e) from e
    if len(raw) > MAX_FILE_BYTES:
        raise DatasetError(dataset_id, shown, f"file is larger than {MAX_FILE_BYTES} bytes")
    return raw


def parse_hdus(raw: bytes, shown: str, dataset_id: str, with_data: bool | frozenset[str]) -> list[FitsHdu]:
    """Every image HDU of a FITS file's bytes, data read for all (`with_data` True), none (False) or those whose
    EXTNAME (upper case) is in the set `with_data`; DatasetError for any problem."""
    try:
        content = _decompress(raw)
        with fits.open(io.BytesIO(content), memmap=False, lazy_load_hdus=True) as hdul:
            hdus = list(hdul)  # reads every header, no data
            end = 0
            for i, hdu in enumerate(hdus):
                info = hdu.fileinfo()
                stop = info["datLoc"] + info["datSpan"]
                if stop > len(content):
                    raise _BadBytes(f"truncated: HDU {i} ends at byte {stop}, the file holds {len(content)} bytes")
                end = max(end, stop)
            if content[end:].strip(b"\0"):
                raise _BadBytes(f"truncated or corrupted: the {len(content) - end} bytes after the last complete HDU "
                                "do not form an HDU")
            return [_image_hdu(hdu, with_data is True or (bool(with_data) and hdu.name.upper() in with_data))
                    for hdu in hdus if isinstance(hdu, _IMAGE_HDUS)]
    except Exception as e:  # the bytes are in memory: whatever fails here is the file's content
        raise DatasetError(dataset_id, shown, f"truncated or unreadable FITS file ({_describe(e)})") from e


def announced_shape(header: fits.Header) -> tuple[int, ...]:
    """The numpy shape an HDU's header announces; () when it holds no data."""
    naxis = int(header.get("NAXIS", 0))
    shape = tuple(int(header.get(f"NAXIS{i}", 0)) for i in range(naxis, 0, -1))
    return shape if shape and all(shape) else ()


def _image_hdu(hdu, with_data: bool) -> FitsHdu:
    shape = announced_shape(hdu.header)
    data = None
    if with_data and shape:
        announced = math.prod(shape) * abs(int(hdu.header.get("BITPIX", 64))) // 8
        if announced > MAX_FILE_BYTES:
            raise _BadBytes(f"HDU {hdu.name} announces {announced} bytes of data, more than {MAX_FILE_BYTES}")
        data = np.array(hdu.data, np.float64)
    return FitsHdu(hdu.name.upper(), hdu.header.copy(), shape, data)


def _decompress(raw: bytes) -> bytes:
    """`raw` decompressed when it starts with a gzip, bzip2 or xz magic number (every concatenated member or
    stream, trailing zero bytes allowed), else as is; _BadBytes when corrupted, cut short or too large."""
    for magic, (name, decompressor, errors) in _COMPRESSED.items():
        if raw.startswith(magic):
            break
    else:
        return raw
    parts, size, rest = [], 0, raw
    try:
        while rest.strip(b"\0"):
            d = decompressor()
            part = d.decompress(rest, MAX_FILE_BYTES + 1 - size)
            size += len(part)
            if size > MAX_FILE_BYTES:
                raise _BadBytes(f"{name} content is larger than {MAX_FILE_BYTES} bytes")
            if not d.eof:
                raise _BadBytes(f"{name} data ends before its end-of-stream marker (truncated)")
            parts.append(part)
            rest = d.unused_data
    except errors as e:
        raise _BadBytes(f"corrupted {name} data ({_describe(e)})") from e
    return b"".join(parts)


def _describe(error: BaseException) -> str:
    return str(error) if isinstance(error, _BadBytes) else f"{type(error).__name__}: {error}"
