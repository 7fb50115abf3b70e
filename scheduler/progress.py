"""The driver's progress display: a live bar on a terminal, one line per few seconds in a log.

    progress = Progress(total=1000, already_done=120)     # 120 datasets were committed by an earlier run
    progress.update(done=130, failed=1, invalid=2, in_flight=4)   # whenever the driver's loop turns
    progress.close()

Counts passed to `update` are totals over the whole store (what `lensfleet status` would count), so a resumed
run shows `done=130/1000`, not the count of this run alone. `already_done` is what was committed (done, failed
or invalid) before this run started; the rate counts only what this run committed:

    rate = (done + failed + invalid − already_done) / seconds since Progress was made
    eta  = (total − done − failed − invalid) / rate

When the stream is a terminal, a rich progress bar shows done, failed, invalid, in flight, rate and ETA. Otherwise
(a log file, `ray job logs -f`), one line every `interval_s` seconds, and one at the start and at close:

    lensfleet progress done=120/1000 failed=1 invalid=2 in_flight=4 rate=3.2/s eta=4m35s

`rate` is datasets per second (three significant figures), `eta` is `?` until this run commits a dataset.

In search mode the searches inside in-flight blocks show too (a SearchCounts from scheduler.tally, which polls
the actors): searches running, converged so far, stopped so far (at n_like_max, not converged), likelihood
evaluations so far and their rate, and an ETA from
the evaluations still to do (what a finished search took, times the searches left), which is known before the
first block commits:

    lensfleet progress done=0/8 failed=0 invalid=0 in_flight=2 searching=4 converged=1 stopped=0
        evaluations=61200 eval_rate=212/s rate=0/s eta=12m30s                                (one line)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import NamedTuple, TextIO

LINE_PREFIX = "lensfleet progress"


class SearchCounts(NamedTuple):
    """The searches of a run's in-flight blocks now: running; converged and stopped (finished at n_like_max
    without meeting the stopping criteria), in in-flight blocks and committed ones; the likelihood evaluations
    this run made and their recent rate (per second), and the seconds left by the evaluations still to do (None
    until a search has finished)."""

    running: int
    converged: int
    stopped: int
    evaluations: int
    eval_rate: float
    eta_s: float | None


def format_duration(seconds: float) -> str:
    """35s, 4m35s, 1h02m, 2d03h."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


class Progress:
    """Progress of one run over `total` datasets; see the module docstring."""

    def __init__(
        self,
        total: int,
        already_done: int = 0,
        interval_s: float = 5.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        live: bool | None = None,
    ):
        self.total = int(total)
        self.already_done = int(already_done)
        self.interval_s = float(interval_s)
        self.stream = stream if stream is not None else sys.stdout
        self.clock = clock
        self.start = clock()
        self.counts = {"done": 0, "failed": 0, "invalid": 0, "in_flight": 0}
        self.searches: SearchCounts | None = None
        self._last_line: float | None = None
        self._closed = False
        self.live = _is_terminal(self.stream) if live is None else live
        self._bar = self._task = None
        if self.live:
            self._start_bar()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def committed(self) -> int:
        return self.counts["done"] + self.counts["failed"] + self.counts["invalid"]

    def rate(self) -> float:
        """Datasets per second committed by this run."""
        elapsed = self.clock() - self.start
        return (self.committed - self.already_done) / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self) -> float | None:
        """Seconds until every dataset is committed: from the searches' evaluations still to do when known, else
        at the current rate of commits; None while neither is known."""
        rate = self.rate()
        remaining = max(self.total - self.committed, 0)
        if remaining == 0:
            return 0.0
        if self.searches is not None and self.searches.eta_s is not None:
            return self.searches.eta_s
        return remaining / rate if rate > 0 else None

    def line(self) -> str:
        """The one-line progress record."""
        c = self.counts
        eta = self.eta_seconds()
        s = self.searches
        searching = "" if s is None else (f"searching={s.running} converged={s.converged} stopped={s.stopped} "
                                          f"evaluations={s.evaluations} eval_rate={s.eval_rate:.3g}/s ")
        return (
            f"{LINE_PREFIX} done={c['done']}/{self.total} failed={c['failed']} invalid={c['invalid']} "
            f"in_flight={c['in_flight']} {searching}rate={self.rate():.3g}/s "
            f"eta={'?' if eta is None else format_duration(eta)}"
        )

    def update(self, done: int, failed: int = 0, invalid: int = 0, in_flight: int = 0,
               searches: SearchCounts | None = None) -> None:
        """New totals (whole store: done, failed, invalid), the blocks in flight now and, in search mode, their
        searches."""
        self.counts = {"done": int(done), "failed": int(failed), "invalid": int(invalid), "in_flight": int(in_flight)}
        self.searches = searches
        if self.live:
            self._update_bar()
            return
        now = self.clock()
        if self._last_line is None or now - self._last_line >= self.interval_s:
            self._write_line(now)

    def close(self) -> None:
        """Final state: stop the bar, or write the last line; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.live:
            self._update_bar()
            self._bar.stop()
        else:
            self._write_line(self.clock())
        elapsed = format_duration(self.clock() - self.start)
        print(f"{LINE_PREFIX} finished: {self.committed}/{self.total} committed ({self.counts['done']} done, "
              f"{self.counts['failed']} failed, {self.counts['invalid']} invalid) in {elapsed}",
              file=self.stream, flush=True)

    def _write_line(self, now: float) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._last_line = now

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]lensfleet"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("done [green]{task.fields[done]}[/] failed [red]{task.fields[failed]}[/] "
                       "invalid [yellow]{task.fields[invalid]}[/] in flight {task.fields[in_flight]}"
                       "{task.fields[searching]}"),
            TextColumn("{task.fields[rate]} eta {task.fields[eta]}"),
            console=Console(file=self.stream),
            auto_refresh=True,
        )
        self._task = self._bar.add_task("fit", total=self.total, completed=self.already_done,
                                        **self._fields())
        self._bar.start()

    def _fields(self) -> dict:
        eta = self.eta_seconds()
        s = self.searches
        searching = "" if s is None else (f" searching {s.running} converged {s.converged} stopped {s.stopped} "
                                          f"{s.eval_rate:.3g} evaluations/s")
        return {**self.counts, "searching": searching, "rate": f"{self.rate():.3g}/s",
                "eta": "?" if eta is None else format_duration(eta)}

    def _update_bar(self) -> None:
        self._bar.update(self._task, completed=self.committed, **self._fields())


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
