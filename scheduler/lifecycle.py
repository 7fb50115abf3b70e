"""What a driver run holds while it runs: the store's driver lease kept alive, the stop signals, the Ray context.

Lease: the driver takes the store's lease (storage.lease; a second driver is refused) before it opens the store
and keeps it with a heartbeat thread (every ttl/3); a driver that loses its lease stops.

Stopping: SIGTERM (what `ray job stop` sends) or SIGINT stops submitting; blocks in flight get the grace period to
commit; then the lease is released and the run ends with exit code 128 + signal, saying how to resume (run the
same command again; only uncommitted blocks run). A second SIGINT stops at once (KeyboardInterrupt).

Ray: local by default (a new cluster), `address` or RAY_ADDRESS to join one (inside `ray job submit` the job's
cluster); a process that already initialised Ray keeps its cluster.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from storage.errors import StoreError
from storage.lease import DriverLease


class Heartbeat(threading.Thread):
    """Renews the driver lease every `interval` seconds; remembers the error if the lease was lost."""

    def __init__(self, lease: DriverLease, interval: float):
        super().__init__(name="lensfleet-lease-heartbeat", daemon=True)
        self.lease = lease
        self.interval = interval
        self.lost: StoreError | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.lease.heartbeat()
            except StoreError as e:
                self.lost = e
                return
            except OSError as e:  # a transient file-system error: try again next beat
                print(f"lensfleet: lease heartbeat failed ({e}); retrying", file=sys.stderr)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


class StopSignals:
    """SIGTERM / SIGINT handling: the first signal asks the run to stop (`signal` holds it); a second SIGINT
    interrupts at once."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str:
        """The name of the signal received ("SIGTERM")."""
        return signal.Signals(self.signal).name

    def install(self) -> None:
        """Handle SIGTERM and SIGINT here. Called again after ray.init, which sets a SIGTERM handler of its own
        (sys.exit); `restore` puts back what was there before the latest install."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread; a driver run from another thread is stopped by Ray
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.signal(sig, self._handle)
            if previous != self._handle:
                self._previous[sig] = previous

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"\nlensfleet: {signal.Signals(signum).name} received: no new blocks; waiting for blocks in flight "
            "to commit", file=sys.stderr, flush=True,
        )


class RayContext:
    """ray.init unless Ray is already initialised in this process (then the caller's cluster is used as is);
    ray.shutdown on exit only if we started it. Address: the given one, else RAY_ADDRESS (set inside `ray job
    submit`), else a new local cluster ("local": an existing `ray start` cluster is joined only when asked,
    with --address auto)."""

    def __init__(self, address: str | None):
        self.address = address
        self.owned = False

    def __enter__(self):
        import ray

        if not ray.is_initialized():
            address = self.address or os.environ.get("RAY_ADDRESS") or "local"
            ray.init(address=address, log_to_driver=True)
            self.owned = True
        return self

    def __exit__(self, *exc) -> None:
        import ray

        if self.owned:
            ray.shutdown()
