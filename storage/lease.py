"""The driver lease: at most one live driver per store.

`lease.json` at the store root (beside the Zarr group; not a Zarr object) records the owner (host, pid, a random
token), when it was acquired, its last heartbeat (epoch seconds, and UTC for people) and its ttl in seconds. A
lease is live while `now - heartbeat <= ttl`. A driver that stops heart-beating (crashed, killed, frozen) loses the
lease after ttl and the next driver takes it over; a driver that finds its lease gone or taken gets a StoreError
from `heartbeat()` and must stop.

Exclusivity
- Local stores: the lease is created with O_CREAT | O_EXCL. A stale lease is taken over by renaming it aside
  (atomic), checking that what moved is the stale lease (it is put back otherwise), then creating exclusively.
- Object stores (fsspec URLs): best effort, as there is no portable create-if-absent: check, write our token, wait
  `settle` seconds, re-read, and keep the lease only if our token is still there. Two drivers can both win only if
  one of them takes longer than `settle` between its check and its write.
Heartbeats compare the clocks of different machines: keep them synchronised (NTP) and ttl much larger than skew.
"""

import json
import os
import posixpath
import socket
import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime

from fsspec.implementations.local import LocalFileSystem

from storage.errors import StoreError
from storage.locations import filesystem

LEASE_FILE = "lease.json"
DEFAULT_TTL = 60.0
_FIELDS = {"host", "pid", "token", "ttl", "acquired_utc", "heartbeat"}


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
        cls, url: str, ttl: float = DEFAULT_TTL, storage_options: dict | None = None, settle: float = 1.0
    ) -> "DriverLease":
        """Take the store's lease; raise StoreError naming the holder if a live lease exists."""
        fs, root = filesystem(url, storage_options)
        fs.makedirs(root, exist_ok=True)
        now = time.time()
        record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": uuid.uuid4().hex,
            "ttl": float(ttl),
            "acquired_utc": _utc(now),
            "heartbeat": now,
            "heartbeat_utc": _utc(now),
        }
        lease = cls(url, fs, posixpath.join(root, LEASE_FILE), record, settle)
        for _ in range(3):
            if lease._create():
                return lease
            current = lease._read()
            if current is None:
                continue  # released meanwhile
            if time.time() - current["heartbeat"] <= current["ttl"]:
                raise StoreError(_held(url, current))
            lease._take_over(current)
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
            with open(partial, "wb") as f:
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
        moved = self._read(aside)
        if moved["token"] != stale["token"]:  # a fresh lease, created after we read the stale one: put it back
            with suppress(FileExistsError):
                os.link(aside, self._path)
        os.unlink(aside)

    def _read(self, path: str | None = None) -> dict | None:
        """The lease record at `path` (default: the lease file), or None if there is none.

        An unreadable record (a driver died while writing it) expires DEFAULT_TTL after the file's mtime.
        """
        path = path or self._path
        try:
            if self._local:
                with open(path, "rb") as f:
                    data = f.read()
            else:
                self._fs.invalidate_cache()
                data = self._fs.cat_file(path)
            with suppress(UnicodeDecodeError, json.JSONDecodeError):
                record = json.loads(data)
                if isinstance(record, dict) and _FIELDS <= set(record):
                    return record
            mtime = os.path.getmtime(path) if self._local else self._fs.modified(path).timestamp()
        except FileNotFoundError:
            return None
        return {"host": "?", "pid": "?", "token": None, "ttl": DEFAULT_TTL, "acquired_utc": "?", "heartbeat": mtime}


def _held(url: str, lease: dict) -> str:
    return (
        f"store {url} is held by driver {lease['host']}:{lease['pid']} since {lease['acquired_utc']}; "
        f"wait for the lease to expire at {_utc(lease['heartbeat'] + lease['ttl'])} or stop that driver"
    )


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
