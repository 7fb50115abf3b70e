"""The driver lease: at most one live driver per store.

`lease.json` at the store root (beside the Zarr group; not a Zarr object) records the owner (host, pid, a random
token), which machine and process it is (boot id, pid namespace, the process's start time: enough to tell
later that this exact process is gone), when it was acquired, its last heartbeat (epoch seconds, and UTC for
people), its ttl in seconds and the caller's `labels` (e.g. the Ray job it runs in). A lease is live while
`now - heartbeat <= ttl`. A driver that finds its lease gone or taken gets a StoreError from `heartbeat()` and
must stop; writers fence their commits with its token (ResultStore.write_block(fence=...)).

Taking a lease that another driver holds (`acquire`):
- at once when the holder provably no longer runs: `holder_is_dead` — it ran on this machine (same host name,
  boot id and pid namespace, so another container or a rebooted host is never judged) and its process is gone
  (no such pid, a zombie, or a newer process reusing the pid) — or when the caller's `holder_gone(record)`
  says so (the driver asks whether the holder's Ray job still runs);
- at once when its lease has expired (no heartbeat for ttl: a crashed, killed or frozen driver elsewhere);
- otherwise the caller may wait up to `max_wait` seconds for it to expire, with a progress line every few
  seconds (`on_wait`), and is refused (StoreError naming the holder) after that.

Exclusivity
- Local stores: the lease is created with O_CREAT | O_EXCL. A stale lease is taken over by renaming it
  aside (atomic), checking that what moved is the stale lease (it is put back otherwise), then creating
  exclusively.
- Object stores (fsspec URLs): best effort, as there is no portable create-if-absent: check, write our token, wait
  `settle` seconds, re-read, and keep the lease only if our token is still there. Two drivers can both win only if
  one of them takes longer than `settle` between its check and its write.
Heartbeats compare the clocks of different machines: keep them synchronised (NTP) and ttl much larger than skew.
"""

import json
import math
import os
import posixpath
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime

from fsspec.implementations.local import LocalFileSystem

from storage.errors import StoreError
from storage.locations import filesystem

LEASE_FILE = "lease.json"
DEFAULT_TTL = 60.0
MIN_TTL = 1.0  # seconds; a shorter ttl expires between heartbeats (every ttl/3) on a loaded machine
WAIT_POLL = 0.5  # seconds between looks at a held lease while waiting for it
WAIT_REPORT = 5.0  # seconds between progress lines while waiting
_FIELDS = {"host", "pid", "token", "ttl", "acquired_utc", "heartbeat"}
_MACHINE = ("host", "boot_id", "pid_namespace")


class DriverLease:
    """A held driver lease: `acquire` it, `heartbeat()` every ttl/3 or so, `release()` it (or use `with`)."""

    def __init__(self, url: str, fs, path: str, record: dict, settle: float):
        self.url = url
        self.record = record
        self._fs = fs
        self._path = path
        self._local = isinstance(fs, LocalFileSystem)
        self._settle = settle

    @classmethod
    def acquire(
        cls,
        url: str,
        ttl: float = DEFAULT_TTL,
        storage_options: dict | None = None,
        settle: float = 1.0,
        max_wait: float = 0.0,
        on_wait: Callable[[str], None] | None = None,
        holder_gone: Callable[[Mapping], bool] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> "DriverLease":
        """Take the store's lease (see the module docstring); StoreError naming the holder if it stays live."""
        if not (math.isfinite(ttl) and ttl >= MIN_TTL):
            raise ValueError(f"lease ttl must be a finite number of seconds >= {MIN_TTL:g}, got {ttl!r}")
        if not (math.isfinite(max_wait) and max_wait >= 0):
            raise ValueError(f"max_wait must be a finite number of seconds >= 0, got {max_wait!r}")
        fs, root = filesystem(url, storage_options)
        fs.makedirs(root, exist_ok=True)
        now = time.time()
        record = {
            **machine_identity(),
            "pid": os.getpid(),
            "pid_start": process_start(os.getpid()),
            "token": uuid.uuid4().hex,
            "ttl": float(ttl),
            "acquired_utc": _utc(now),
            "heartbeat": now,
            "heartbeat_utc": _utc(now),
            "labels": dict(labels or {}),
        }
        lease = cls(url, fs, posixpath.join(root, LEASE_FILE), record, settle)
        deadline = time.monotonic() + max_wait
        reported = -math.inf
        for _ in range(3):  # rounds without waiting: the lease was released or taken over under us
            while not lease._create():
                current = lease._read()
                if current is None:
                    break  # released meanwhile: try again
                expired = time.time() - current["heartbeat"] > current["ttl"]
                if expired or holder_is_dead(current) or (holder_gone is not None and holder_gone(current)):
                    lease._take_over(current)
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError(_held(url, current))
                if on_wait is not None and time.monotonic() - reported >= WAIT_REPORT:
                    reported = time.monotonic()
                    on_wait(_waiting(url, current, left))
                time.sleep(min(WAIT_POLL, left))
            else:
                return lease
        raise StoreError(f"store {url}: could not acquire the driver lease; other drivers are contending for it")

    @property
    def token(self) -> str:
        return self.record["token"]

    def heartbeat(self) -> None:
        """Renew the lease; StoreError if it is no longer ours (it expired and another driver took it)."""
        current = self._read()
        if current is None or current["token"] != self.token:
            holder = "nobody" if current is None else f"driver {current['host']}:{current['pid']}"
            raise StoreError(f"store {self.url}: this driver lost its lease (now held by {holder}); stop this driver")
        now = time.time()
        self.record.update(heartbeat=now, heartbeat_utc=_utc(now))
        data = json.dumps(self.record).encode()
        if self._local:
            partial = f"{self._path}.{self.token}.partial"
            fd = os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, self._path)
        else:
            self._fs.pipe_file(self._path, data)

    def release(self) -> None:
        """Give the lease up (if it is still ours)."""
        current = self._read()
        if current is not None and current["token"] == self.token:
            self._fs.rm(self._path)

    def __enter__(self) -> "DriverLease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _create(self) -> bool:
        """Create the lease file exclusively (best effort on object stores); True if it is ours."""
        data = json.dumps(self.record).encode()
        if self._local:
            try:
                fd = os.open(self._path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return True
        self._fs.invalidate_cache()
        if self._fs.exists(self._path):
            return False
        self._fs.pipe_file(self._path, data)
        time.sleep(self._settle)
        current = self._read()
        return current is not None and current["token"] == self.token

    def _take_over(self, stale: dict) -> None:
        """Remove the stale lease `stale`, and only it."""
        if not self._local:
            self._fs.rm(self._path)
            return
        aside = f"{self._path}.{self.token}.stale"
        try:
            os.rename(self._path, aside)
        except FileNotFoundError:
            return
        moved = _read_record(self._fs, aside, local=True)
        if moved["token"] != stale["token"]:  # a fresh lease, created after we read the stale one: put it back
            with suppress(FileExistsError):
                os.link(aside, self._path)
        os.unlink(aside)

    def _read(self) -> dict | None:
        return _read_record(self._fs, self._path, self._local)


def read_lease(url: str, storage_options: dict | None = None) -> dict | None:
    """The store's lease record as it is now (None when nobody holds it): for writers fencing their commits."""
    fs, root = filesystem(url, storage_options)
    return _read_record(fs, posixpath.join(root, LEASE_FILE), isinstance(fs, LocalFileSystem))


def machine_identity() -> dict:
    """This machine and process namespace: host name, kernel boot id, pid namespace (None where not Linux)."""
    boot_id, namespace = None, None
    with suppress(OSError):
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot_id = f.read().strip()
    with suppress(OSError):
        namespace = os.stat("/proc/self/ns/pid").st_ino
    return {"host": socket.gethostname(), "boot_id": boot_id, "pid_namespace": namespace}


def process_start(pid: int) -> str | None:
    """When process `pid` of this pid namespace started (clock ticks after boot, from /proc; "" where /proc
    does not say), or None when there is no such live process (none, or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else fields[19]  # state; starttime (field 22 of proc(5))
    except FileNotFoundError:
        return None
    except OSError:  # no /proc here (macOS): existence only
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""


def holder_is_dead(record: Mapping) -> bool:
    """True when the lease's holder provably no longer runs (see the module docstring); False when alive or
    when this machine cannot tell."""
    me = machine_identity()
    if any(record.get(key) != me[key] for key in _MACHINE) or not isinstance(record.get("pid"), int):
        return False
    start = process_start(record["pid"])
    recorded = record.get("pid_start")
    return start is None or (bool(start) and bool(recorded) and start != recorded)


def _read_record(fs, path: str, local: bool) -> dict | None:
    """The lease record at `path`, or None if there is none.

    An unreadable record (a driver died while writing it) expires DEFAULT_TTL after the file's mtime.
    """
    try:
        if local:
            with open(path, "rb") as f:
                data = f.read()
        else:
            fs.invalidate_cache()
            data = fs.cat_file(path)
        with suppress(UnicodeDecodeError, json.JSONDecodeError):
            record = json.loads(data)
            if isinstance(record, dict) and _FIELDS <= set(record):
                return record
        mtime = os.path.getmtime(path) if local else fs.modified(path).timestamp()
    except FileNotFoundError:
        return None
    return {"host": "?", "pid": "?", "token": None, "ttl": DEFAULT_TTL, "acquired_utc": "?", "heartbeat": mtime}


def _held(url: str, lease: Mapping) -> str:
    return (
        f"store {url} is held by driver {lease['host']}:{lease['pid']} since {lease['acquired_utc']}; "
        f"wait for the lease to expire at {_utc(lease['heartbeat'] + lease['ttl'])} or stop that driver"
    )


def _waiting(url: str, lease: Mapping, left: float) -> str:
    beat = time.time() - lease["heartbeat"]
    expires = lease["heartbeat"] + lease["ttl"] - time.time()
    return (f"lensfleet: store {url} is held by driver {lease['host']}:{lease['pid']} (last heartbeat {beat:.0f} s "
            f"ago, expires in {max(expires, 0):.0f} s unless renewed); waiting up to {left:.0f} s more")


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
