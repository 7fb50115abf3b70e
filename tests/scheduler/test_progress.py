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


def test_search_progress_shows_running_searches_their_evaluation_rate_and_an_eta():
    from scheduler.progress import SearchCounts
    from scheduler.tally import LiveSearches

    clock, out = FakeClock(), io.StringIO()
    live = LiveSearches(searched_stages=1, clock=clock)
    progress = Progress(total=8, interval_s=5, stream=out, clock=clock)
    assert live.counts(8) is None  # no actor answered yet

    def state(block, searches, running, converged, evaluations, finished_evaluations):
        return {"block": block, "searches": searches, "running": running, "converged": converged, "stopped": 0,
                "failed": 0, "evaluations": evaluations, "finished_evaluations": finished_evaluations,
                "likelihood_s": 0.0, "actor": "a"}

    live.polled(state(0, 4, 4, 0, 1000, 0), in_flight={0, 1})
    live.polled(state(7, 4, 4, 0, 5000, 0), in_flight={0, 1})  # a block no longer in flight: ignored
    assert live.counts(8) == SearchCounts(4, 0, 0, 1000, 0.0, None)
    clock.now += 10
    live.polled(state(0, 4, 3, 1, 3000, 1200), in_flight={0, 1})
    # 2000 evaluations in 10 s; a finished search took 1200: 8 datasets × 1200 − 3000 in flight = 6600 → 33 s
    counts = live.counts(8)
    assert counts == SearchCounts(3, 1, 0, 3000, 200.0, 33.0)
    progress.update(done=0, in_flight=2, searches=counts)
    assert lines(out)[-1] == ("lensfleet progress done=0/8 failed=0 invalid=0 in_flight=2 searching=3 converged=1 "
                              "stopped=0 evaluations=3000 eval_rate=200/s rate=0/s eta=33s")

    clock.now += 10  # block 0 commits with 4 converged searches of 4400 evaluations in all (and its final fits)
    live.committed(0, 4404, state(0, 4, 0, 4, 4400, 4400))
    rate = (4404 - 1000) / 20  # over the polls of the last RATE_WINDOW_S seconds
    assert live.counts(4) == SearchCounts(0, 4, 0, 4404, rate, 4 * 1100 / rate)
    clock.now += 10  # every search of block 1 stopped at n_like_max; the block has not committed yet
    live.polled({**state(1, 4, 0, 0, 2000, 2000), "stopped": 4}, in_flight={1})
    assert live.counts(4)[:3] == (0, 4, 4)
