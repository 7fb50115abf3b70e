"""The driver's progress record: one parseable line every few seconds in a log, with this run's rate and ETA; a
live bar on a terminal."""

from __future__ import annotations

import io

from scheduler.progress import Progress, format_duration


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_log_gets_one_line_per_interval_with_rate_and_eta():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(total=1000, already_done=100, interval_s=5, stream=out, clock=clock)
    progress.update(done=100, failed=0, invalid=0, in_flight=4)  # the first update is logged at once
    assert lines(out) == ["lensfleet progress done=100/1000 failed=0 invalid=0 in_flight=4 rate=0/s eta=?"]

    clock.now += 3
    progress.update(done=105, in_flight=4)  # within the interval: nothing
    assert len(lines(out)) == 1

    clock.now += 2  # 5 s in: 10 committed by this run (7 done, 1 failed, 2 invalid) -> 2/s, 890 left -> 445 s
    progress.update(done=107, failed=1, invalid=2, in_flight=3)
    assert lines(out)[-1] == "lensfleet progress done=107/1000 failed=1 invalid=2 in_flight=3 rate=2/s eta=7m25s"

    clock.now += 300 - 5  # 300 s in: 890 committed -> 2.97/s, 10 left -> 3 s
    progress.update(done=985, failed=3, invalid=2, in_flight=1)
    assert lines(out)[-1] == "lensfleet progress done=985/1000 failed=3 invalid=2 in_flight=1 rate=2.97/s eta=3s"

    clock.now += 4
    progress.update(done=995, failed=3, invalid=2, in_flight=0)
    progress.close()
    progress.close()  # idempotent
    assert lines(out)[-2:] == [
        "lensfleet progress done=995/1000 failed=3 invalid=2 in_flight=0 rate=2.96/s eta=0s",
        "lensfleet progress finished: 1000/1000 committed (995 done, 3 failed, 2 invalid) in 5m04s",
    ]
    assert len(lines(out)) == 5


def test_durations_read_like_a_clock():
    assert [format_duration(s) for s in (0, 35.4, 60, 275, 3600, 3725, 86400 + 3 * 3600 + 59)] == [
        "0s", "35s", "1m00s", "4m35s", "1h00m", "1h02m", "1d03h",
    ]


def test_a_terminal_gets_a_live_bar_and_no_log_lines():
    clock, out = FakeClock(), io.StringIO()
    with Progress(total=10, stream=out, clock=clock, live=True) as progress:
        clock.now += 2
        progress.update(done=4, failed=1, invalid=0, in_flight=2)
    text = out.getvalue()
    assert "lensfleet progress done=" not in text
    assert "5/10" in text and "2.5/s" in text and "eta 2s" in text
    assert text.splitlines()[-1].startswith("lensfleet progress finished: 5/10 committed")
