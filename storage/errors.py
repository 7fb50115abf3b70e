"""The exceptions of storage, one type per kind of refusal, and how a failure is classified (`classify`).

- `DatasetError`: one lens's input is bad (missing, unreadable or invalid). The run goes on; the dataset is
  INVALID with `str(error)` as its reason, for good.
- `DatasetUnavailable`: one lens's files could not be fetched (a connection refused or reset, a timeout, a server
  error; or, with `environment`, a problem of the machine rather than the lens: no space, no permission, too many
  open files). Its bytes say nothing about the lens, so it is never INVALID.
- `CatalogError`: the survey catalog itself is unusable (missing column, empty or duplicate id). Nothing starts.
- `StoreError`: the result store refuses (another driver holds it, it belongs to another config or catalog, a
  writer's lease is no longer the store's).

`classify(error)` maps any exception raised while reading, fitting or committing one lens to its `Fault`:

    Fault.BAD_INPUT    DatasetError                                  -> Status.INVALID (final)
    Fault.TRANSIENT    DatasetUnavailable; ConnectionError, TimeoutError and other OSError (a network file
                       system or object store failing)               -> retry the lens now (`retry_transient`),
                                                                        then Status.FAILED (retryable later)
    Fault.ENVIRONMENT  an OSError whose errno is in ENVIRONMENT_ERRNOS (ENOSPC, EDQUOT, EROFS, EACCES, EPERM,
                       EMFILE, ENFILE, ENOMEM), MemoryError, DatasetUnavailable(environment=True), StoreError
                                                                     -> commit nothing: leave the block PENDING
                                                                        (retried on resume, once the machine is
                                                                        fixed; a StoreError means this writer
                                                                        must stop)
    Fault.ERROR        anything else (a bug, a numerical failure)    -> Status.FAILED

Classification follows the exception's `__cause__` / `__context__` chain where the exception itself is generic,
so `RuntimeError(...) from OSError(ENOSPC)` is ENVIRONMENT.
"""

import errno
import time
from collections.abc import Callable
from enum import Enum
from typing import TypeVar

from storage.schema import Status

ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EMFILE, errno.ENFILE, errno.ENOMEM}
)
TRANSIENT_ATTEMPTS = 3  # tries of one lens's read before it is FAILED (retry_transient)
TRANSIENT_DELAY = 0.5  # seconds before the second try; doubled before each further one
T = TypeVar("T")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class DatasetError(Exception):
    """A dataset failed to load or validate; `str()` reads "dataset ID: FILE: REASON" on one line."""

    def __init__(self, dataset_id: str, path: str, reason: str):
        self.dataset_id = dataset_id
        self.path = path
        self.reason = _one_line(reason)
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"dataset {self.dataset_id}: {self.path}: {self.reason}"

    def __reduce__(self):
        return type(self), (self.dataset_id, self.path, self.reason)


class DatasetUnavailable(Exception):
    """A dataset's file could not be fetched: "dataset ID: FILE: could not be read (TYPE: MESSAGE)". Transient, or
    with `environment` a problem of this machine (see the module docstring); never a verdict on the lens."""

    def __init__(self, dataset_id: str, path: str, reason: str, environment: bool = False):
        self.dataset_id = dataset_id
        self.path = path
        self.reason = _one_line(reason)
        self.environment = environment
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"dataset {self.dataset_id}: {self.path}: {self.reason}"

    def __reduce__(self):
        return type(self), (self.dataset_id, self.path, self.reason, self.environment)


class CatalogError(Exception):
    """The catalog cannot be used; the message names the catalog and the row or id at fault."""

    def __init__(self, catalog: str, reason: str):
        self.catalog = catalog
        self.reason = _one_line(reason)
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"catalog {self.catalog}: {self.reason}"

    def __reduce__(self):
        return type(self), (self.catalog, self.reason)


class StoreError(Exception):
    """The result store refuses an operation; the message says why and what to do."""


class Fault(Enum):
    """What a failure means for its lens (see the module docstring)."""

    BAD_INPUT = "bad input"
    TRANSIENT = "transient"
    ENVIRONMENT = "environment"
    ERROR = "error"

    @property
    def status(self) -> Status:
        """The status the lens is committed with; PENDING means: do not commit its block."""
        return {Fault.BAD_INPUT: Status.INVALID, Fault.ENVIRONMENT: Status.PENDING}.get(self, Status.FAILED)


def classify(error: BaseException) -> Fault:
    """The `Fault` of an exception raised while reading, fitting or committing a lens."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        fault = _own_fault(error)
        if fault is not None:
            return fault
        error = error.__cause__ or error.__context__
    return Fault.ERROR


def _own_fault(error: BaseException) -> Fault | None:
    if isinstance(error, DatasetError):
        return Fault.BAD_INPUT
    if isinstance(error, DatasetUnavailable):
        return Fault.ENVIRONMENT if error.environment else Fault.TRANSIENT
    if isinstance(error, (StoreError, MemoryError)):
        return Fault.ENVIRONMENT
    if isinstance(error, OSError):
        return Fault.ENVIRONMENT if error.errno in ENVIRONMENT_ERRNOS else Fault.TRANSIENT
    if isinstance(error, TimeoutError | ConnectionError):
        return Fault.TRANSIENT
    return None


def is_missing(error: FileNotFoundError) -> bool:
    """Whether a FileNotFoundError means that the file is not there (True) or that asking failed: fsspec's HTTP
    file system raises FileNotFoundError from whatever made its request fail (a refused connection, a timeout),
    s3fs from the S3 error. Missing: no cause, or an HTTP 404/410 (aiohttp's `status`, botocore's
    `response["ResponseMetadata"]["HTTPStatusCode"]`)."""
    cause = error.__cause__
    while isinstance(cause, FileNotFoundError):
        cause = cause.__cause__
    return cause is None or _http_status(cause) in (404, 410)


def _http_status(error: BaseException) -> int | None:
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return status
    response = getattr(error, "response", None)
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None


def retry_transient(
    call: Callable[[], T], attempts: int = TRANSIENT_ATTEMPTS, delay: float = TRANSIENT_DELAY
) -> T:
    """`call()`, tried again after a TRANSIENT failure (waiting delay, 2·delay, ... seconds) up to `attempts`
    times in all; any other failure, or the last transient one, is raised as is."""
    for attempt in range(attempts - 1):
        try:
            return call()
        except Exception as e:
            if classify(e) is not Fault.TRANSIENT:
                raise
        time.sleep(delay * 2**attempt)
    return call()
