"""The custom metrics reach the node's Prometheus endpoint with the names in workers/telemetry.py and the counts
that the driver and the actors recorded (a real local Ray cluster; export is periodic, so the test polls)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from workers.telemetry import METRIC_NAMES, ActorMetrics, RunMetrics, run_name
from small_survey import free_port

RUN = "metrics-test.zarr"


@pytest.fixture(scope="module")
def cluster():
    port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, _metrics_export_port=port,
             _system_config={"metrics_report_interval_ms": 1000})
    yield f"http://127.0.0.1:{port}/metrics"
    ray.shutdown()


@ray.remote(num_cpus=0)
class FakeActor:
    """Records what a fitting actor records, with known numbers."""

    def __init__(self, name: str):
        self.metrics = ActorMetrics(RUN, name)

    def work(self, device_bytes: int | None) -> None:
        self.metrics.compiled(3.5)
        self.metrics.block_started()
        self.metrics.searching(running=3, converged=1, evaluations=60)  # a progress poll inside the block
        self.metrics.likelihood_evaluations(100, 2.0, converged=4)  # its end: 40 more evaluations, 3 more converged
        self.metrics.block_started()
        self.metrics.likelihood_evaluations(50, 1.0)  # the rate is the last block's: 50/s
        self.metrics.device_memory(device_bytes)


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels we tag with): value}, summed over Ray's own labels (worker id, node, ...)."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    samples: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("run") != RUN:
                continue
            ours = frozenset((k, v) for k, v in s.labels.items() if k in ("actor", "memory", "le"))
            samples[(s.name, ours)] = samples.get((s.name, ours), 0.0) + s.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_driver_and_actor_metrics_appear_with_their_counts(cluster):
    actors = [FakeActor.remote("actor-0"), FakeActor.remote("actor-1")]
    ray.get([actors[0].work.remote(None), actors[1].work.remote(2_000_000_000)])
    run = RunMetrics(RUN)
    run.block_committed(done=3, failed=1, invalid=0, seconds=2.5)
    run.block_committed(done=4, failed=0, invalid=1, seconds=12.0)
    run.datasets_committed(failed=2)  # a block the driver gave up on
    run.block_retried()
    run.in_flight(2)
    run.pending(9)

    expected = {
        ("ray_lensfleet_datasets_done_total", ()): 7,
        ("ray_lensfleet_datasets_failed_total", ()): 3,
        ("ray_lensfleet_datasets_invalid_total", ()): 1,
        ("ray_lensfleet_blocks_retried_total", ()): 1,
        ("ray_lensfleet_blocks_in_flight", ()): 2,
        ("ray_lensfleet_datasets_pending", ()): 9,
        ("ray_lensfleet_block_seconds_count", ()): 2,
        ("ray_lensfleet_block_seconds_bucket", (("le", "2.0"),)): 0,
        ("ray_lensfleet_block_seconds_bucket", (("le", "5.0"),)): 1,
        ("ray_lensfleet_block_seconds_bucket", (("le", "20.0"),)): 2,
        ("ray_lensfleet_device_memory_bytes", (("actor", "actor-1"), ("memory", "device"))): 2e9,
    }
    for actor in ("actor-0", "actor-1"):
        expected |= {
            ("ray_lensfleet_likelihood_evaluations_total", (("actor", actor),)): 150,
            ("ray_lensfleet_evaluations_per_second", (("actor", actor),)): 50,
            ("ray_lensfleet_searches_converged_total", (("actor", actor),)): 4,
            ("ray_lensfleet_searches_running", (("actor", actor),)): 0,
            ("ray_lensfleet_compiles_total", (("actor", actor),)): 1,
            ("ray_lensfleet_compile_seconds_total", (("actor", actor),)): 3.5,
        }
    deadline = time.monotonic() + 60
    while True:
        samples = scrape(cluster)
        got = {key: value(samples, key[0], **dict(key[1])) for key in expected}
        rss = value(samples, "ray_lensfleet_device_memory_bytes", actor="actor-0", memory="rss")
        if (got == expected and rss is not None) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert got == expected
    # Ray 2.60 aggregates histogram observations at their bucket midpoints, so the sum is only bucket-exact:
    # 2.5 s lies in (2, 5], 12 s in (10, 20]
    assert 2 + 10 <= value(samples, "ray_lensfleet_block_seconds_sum") <= 5 + 20
    assert 20e6 < rss < 20e9  # an actor process's resident memory, in bytes
    exported = {name for name, _ in samples}
    for name in METRIC_NAMES:  # every documented metric is exported under ray_<name>[_total|_count|...]
        assert any(e.startswith(f"ray_{name}") for e in exported), name


def test_run_tag_is_the_store_name():
    assert run_name("s3://bucket/survey/results.zarr/") == "results.zarr"
    assert run_name("/data/run1.zarr") == "run1.zarr"


def test_metrics_module_leaves_jax_out():
    code = "import sys, workers.telemetry, scheduler.progress, scheduler.status; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gauges_are_set_again_until_their_run_closes(monkeypatch):
    from workers import telemetry as metrics

    class FakeGauge:
        info = {"name": "lensfleet_fake"}

        def __init__(self):
            self.sets = []

        def set(self, value, tags):
            self.sets.append((value, dict(tags)))

    monkeypatch.setattr(metrics, "GAUGE_REFRESH_S", 0.05)
    keeper, gauge = metrics._GaugeKeeper(), FakeGauge()
    monkeypatch.setattr("ray.is_initialized", lambda: True)
    keeper.set(gauge, 3, {"run": "a"})
    keeper.set(gauge, 4, {"run": "b"})
    time.sleep(0.3)
    assert gauge.sets.count((3, {"run": "a"})) >= 3 and gauge.sets.count((4, {"run": "b"})) >= 3
    keeper.forget({"run": "a"})
    time.sleep(0.1)
    before = len(gauge.sets)
    time.sleep(0.3)
    assert {v for v, _ in gauge.sets[before:]} == {4}  # only run b is refreshed
