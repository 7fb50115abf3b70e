"""The submission path, with the README's commands ("Submit to a local cluster", read from README.md; only ports,
folders and the store's path are this test's): the README's `export RAY_AUTH_MODE=token` and
`deploy/local/start-head.sh` (token generated in a fresh HOME, mode 0600, the head on 127.0.0.1),
`ray job submit -- lensfleet run ...` with the survey as the job's working dir, `ray job stop` mid-run, and the
same submission again, which resumes and finishes; an unauthenticated `POST /api/jobs/` is refused. Meanwhile the node's Prometheus endpoint (the README's
--metrics-export-port) is scraped: every lensfleet metric the Grafana dashboard queries must be one this real run
exported (or a failure counter, which Ray exports only once incremented; tests/scheduler/test_metrics.py checks
those names).

The cluster is this test's own: started with `ray start --head --block` in a new session under its own
--temp-dir, and stopped by SIGTERM to that `ray start` process (it drains and stops every process it started),
not by `ray stop`, which would stop every Ray cluster on the machine, including other test runs'. The cluster is
started with RAY_JOB_STOP_WAIT_TIME_S=30 — what a deployment should set — so that `ray job stop` gives the driver
its grace period (30 s) to let blocks in flight commit and release the store's lease instead of being SIGKILLed
after Ray's default 3 s. Token authentication is on, as the README's recipe sets it up: the cluster and every
`ray` command run with RAY_AUTH_MODE=token and HOME set to this test's own folder, where the start script
generated the token (~/.ray/auth_token).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from prometheus_client.parser import text_string_to_metric_families

from small_survey import free_port, own_port_options, stop_head
from storage.catalog import CatalogEntry, read_catalog, write_catalog
from storage.lease import LEASE_FILE, DriverLease
from storage.schema import Status
from storage.store import ResultStore
from workers.survey import simulate_survey

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GRAFANA = ROOT / "deploy" / "grafana" / "lensfleet.json"
NEVER_INCREMENTED = {"ray_lensfleet_datasets_failed_total", "ray_lensfleet_datasets_invalid_total",
                     "ray_lensfleet_blocks_retried_total",  # this run has no failure, invalid dataset or retry ...
                     "ray_lensfleet_searches_converged_total"}  # ... and no search (evaluate mode)
COPIES = 400  # catalog rows of the one simulated lens: 25 blocks of 16, a run long enough to stop midway


def readme_commands() -> dict[str, list[str]]:
    """The README's local-cluster commands by verb ("export", "start", "submit", "stop"), each split like a shell
    would: the `export`, the start script, and the `ray job` commands."""
    section = README.read_text().split("### Submit to a local cluster", 1)[1].split("\n###", 1)[0]
    lines = [shlex.split(line) for line in section.splitlines() if line.startswith("    ")]
    verbs = {"export": "export", "deploy/local/start-head.sh": "start"}
    commands = {verbs.get(argv[0]) or argv[2]: argv for argv in lines}
    assert set(commands) == {"export", "start", "submit", "stop"}, lines
    return commands


def with_values(argv: list[str], values: dict[str, str]) -> list[str]:
    """argv with the value of each option in `values` replaced (`--opt value` or `--opt=value`); every option
    must be there."""
    out, seen = list(argv), set()
    for i, arg in enumerate(argv):
        name = arg.split("=", 1)[0]
        if name in values and name not in seen:
            seen.add(name)
            if "=" in arg:
                out[i] = f"{name}={values[name]}"
            else:
                out[i + 1] = values[name]
    assert seen == set(values), (argv, values)
    return out


@pytest.fixture(scope="module")
def cluster():
    """A one-node Ray cluster with 2 CPUs; yields the dashboard (job submission) address, the environment for
    `ray` commands and the metrics endpoint."""
    port, dashboard, metrics = free_port(), free_port(), free_port()
    temp_dir = tempfile.mkdtemp(prefix="lfray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    readme = readme_commands()
    name, value = readme["export"][1].split("=", 1)
    home = os.path.join(temp_dir, "home")  # the token the start script generates goes here, not in ~
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN"}
    env.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", RAY_JOB_STOP_WAIT_TIME_S="30",
               RAY_USAGE_STATS_ENABLED="0", HOME=home, **{name: value})
    log = open(os.path.join(temp_dir, "ray-start.log"), "w")
    start = with_values(readme["start"], {"--dashboard-port": str(dashboard), "--metrics-export-port": str(metrics)})
    head = subprocess.Popen(
        [str(ROOT / start[0]), *start[1:], "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=true",
         f"--temp-dir={temp_dir}", "--disable-usage-stats", *own_port_options()],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{address}/api/version", timeout=2)
                break
            except urllib.error.HTTPError:  # the dashboard answers (token authentication refuses us): it is up
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"ray start did not come up: {Path(log.name).read_text()[-2000:]}")
                time.sleep(1)
        while True:  # the dashboard answers before the node's job agent registers: wait until jobs are taken
            ready = ray_cli(env, "job", "submit", "--address", address, "--no-wait", "--", "true", timeout=60)
            if ready.returncode == 0:
                break
            if "No available agent" not in ready.stderr or time.monotonic() > deadline:
                pytest.fail(f"the cluster takes no job: {ready.stderr[-2000:]}")
            time.sleep(1)
        yield address, env, f"http://127.0.0.1:{metrics}/metrics", home
    finally:
        stop_head(head, log, temp_dir)


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory):
    """The job's working dir: one simulated lens (60×60: one shape bucket, one compile) listed COPIES times."""
    folder = tmp_path_factory.mktemp("job")
    survey = simulate_survey(1, folder, seed=11)
    entries = read_catalog(str(survey.catalog)).entries
    rows = [CatalogEntry(f"{e.id}-{j:02d}", e.path, e.pixel_scale, e.mask_radius, e.params)
            for j in range(COPIES) for e in entries]
    write_catalog(str(survey.catalog), rows)
    return folder


def ray_cli(env, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ray"), *args], capture_output=True, text=True, env=env, timeout=timeout)


def exported(metrics: str) -> set[str]:
    """The lensfleet metric names (samples) on the node's Prometheus endpoint now."""
    try:
        text = urllib.request.urlopen(metrics, timeout=5).read().decode()
    except OSError:
        return set()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith("ray_lensfleet_")}


def committed(store: str) -> int:
    try:
        counts = ResultStore.open_existing(store).status_counts()
    except Exception:  # not created yet, or being created
        return 0
    return sum(n for s, n in counts.items() if s != Status.PENDING)


def test_submit_stop_midway_and_resume(cluster, job_dir, tmp_path):
    address, env, metrics, _ = cluster
    store = str(tmp_path / "results.zarr")  # absolute: the job runs in its own copy of the working dir
    readme = readme_commands()
    submit = with_values(readme["submit"], {"--address": address, "--working-dir": str(job_dir), "--store": store})
    stop = with_values(readme["stop"], {"--address": address})
    assert submit[:3] == ["ray", "job", "submit"] and stop[-1] == "<submission-id>"
    n = COPIES

    def submit_as(submission_id: str, *options: str) -> subprocess.CompletedProcess:
        return ray_cli(env, *submit[1:3], "--submission-id", submission_id, *options, *submit[3:])

    started = submit_as("lensfleet-first", "--no-wait")
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 300
    seen: set[str] = set()
    while committed(store) == 0:  # wait for the actor to warm up and commit its first blocks
        assert time.monotonic() < deadline, ray_cli(env, "job", "logs", "--address", address, "lensfleet-first").stdout
        time.sleep(0.2)
        seen |= exported(metrics)
    stopped = ray_cli(env, *stop[1:-1], "lensfleet-first")
    assert stopped.returncode == 0, stopped.stderr
    status = ray_cli(env, "job", "status", "--address", address, "lensfleet-first")
    assert "was stopped" in status.stdout, status.stdout + status.stderr
    logs = ray_cli(env, "job", "logs", "--address", address, "lensfleet-first").stdout
    assert "SIGTERM" in logs, logs[-3000:]

    midway = ResultStore.open_existing(store)
    counts = midway.status_counts()
    assert 0 < counts[Status.DONE] < n and counts[Status.FAILED] == counts[Status.INVALID] == 0, counts
    assert counts[Status.DONE] + counts[Status.PENDING] == n
    assert not (Path(store) / LEASE_FILE).exists(), "the stopped driver released the store's lease"
    done_first = midway.read_array("status") == Status.DONE

    resumed = submit_as("lensfleet-resume", "--no-wait")  # the same command again
    assert resumed.returncode == 0, resumed.stderr
    while True:
        seen |= exported(metrics)
        state = ray_cli(env, "job", "status", "--address", address, "lensfleet-resume").stdout
        if any(word in state for word in ("succeeded", "failed", "stopped")):
            break
        time.sleep(1)
    assert "succeeded" in state, state + ray_cli(env, "job", "logs", "--address", address, "lensfleet-resume").stdout
    dashboard = json.loads(GRAFANA.read_text())
    queries = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", []))
    queried = set(re.findall(r"\bray_lensfleet_\w+", queries))
    assert {"ray_lensfleet_datasets_done_total", "ray_lensfleet_block_seconds_bucket",
            "ray_lensfleet_likelihood_evaluations_total"} <= queried & seen
    assert queried <= seen | NEVER_INCREMENTED, queried - seen
    status = subprocess.run([str(BIN / "lensfleet"), "status", store, "--json"], capture_output=True, text=True)
    summary = json.loads(status.stdout)
    assert summary["counts"] == {"pending": 0, "done": n, "failed": 0, "invalid": 0} and summary["driver_runs"] == 2

    final = ResultStore.open_existing(store)
    assert (final.read_array("status") == Status.DONE).all()
    assert [r["resumed"] for r in final.attrs["runs"]] == [False, True]
    driver_run = final.read_array("driver_run")
    assert (driver_run[done_first] == 1).all() and (driver_run[~done_first] == 2).all()  # only the rest ran again
    # every copy of a lens has the same results, whichever run fitted it: the resumed store equals a clean run
    ids = final.read_array("id").tolist()
    merit = final.read_array("figure_of_merit")
    model_image = final.read_array("model_image")
    for lens in {i.rsplit("-", 1)[0] for i in ids}:
        rows = [k for k, i in enumerate(ids) if i.rsplit("-", 1)[0] == lens]
        np.testing.assert_array_equal(merit[rows], merit[rows[0]])
        np.testing.assert_array_equal(model_image[rows], np.broadcast_to(model_image[rows[0]], model_image[rows].shape))


def test_the_readme_cluster_requires_its_token_kept_private_and_serves_jobs_on_loopback_only(cluster):
    address, env, _, home = cluster
    token_file = Path(home) / ".ray" / "auth_token"
    assert token_file.stat().st_mode & 0o777 == 0o600 and len(token_file.read_text().strip()) >= 32
    job = json.dumps({"entrypoint": "touch /tmp/lensfleet-unauthenticated-job"}).encode()
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        request = urllib.request.Request(f"{address}/api/jobs/", data=job, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code in (401, 403)
    listed = ray_cli(env, "job", "list", "--address", address)
    assert listed.returncode == 0, listed.stderr  # with the token (from HOME), the same API answers
    port = int(address.rsplit(":", 1)[1])
    for ip in network_addresses():
        with socket.socket() as s, pytest.raises(OSError):  # the Jobs API is not on the machine's network
            s.settimeout(2)
            s.connect((ip, port))


def network_addresses() -> set[str]:
    """This machine's IPv4 addresses other than loopback: its host name's, and the one it routes out by."""
    found = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: no packet is sent; the kernel picks the outgoing address
            found.add(probe.getsockname()[0])
        except OSError:  # no route: no network
            pass
    return {ip for ip in found if not ip.startswith("127.")}


def test_a_lease_whose_ray_job_ended_is_taken_over_at_once_and_a_running_jobs_is_not(cluster, tmp_path):
    """A driver that ran on another node of the cluster leaves a lease naming its Ray job (as `lensfleet run`
    records it inside `ray job submit`). A new driver submitted to the same cluster asks the job table
    (scheduler.lifecycle.ray_job_ended, the check `lensfleet run` makes): an ended job's lease is taken over at
    once, a running job's lease is not (no wait allowed here, so it is refused)."""
    address, env, _, _ = cluster
    ended = ray_cli(env, "job", "submit", "--address", address, "--submission-id", "lensfleet-ended", "--", "true")
    assert ended.returncode == 0, ended.stderr
    running = ray_cli(env, "job", "submit", "--address", address, "--submission-id", "lensfleet-running",
                      "--no-wait", "--", "sleep", "300")
    assert running.returncode == 0, running.stderr
    probe = (
        "import sys\n"
        "from scheduler.lifecycle import ray_job_ended\n"
        "from storage.errors import StoreError\n"
        "from storage.lease import DriverLease\n"
        "try:\n"
        "    DriverLease.acquire(sys.argv[1], holder_gone=ray_job_ended, settle=0).release()\n"
        "    print('PROBE: taken over')\n"
        "except StoreError as e:\n"
        "    print('PROBE: refused:', e)\n"
    )
    try:
        for job, outcome in (("lensfleet-ended", "PROBE: taken over"), ("lensfleet-running", "PROBE: refused")):
            store = tmp_path / f"{job}.zarr"
            DriverLease.acquire(str(store), ttl=600, labels={"ray_job": job})  # never released: its holder "died"
            lease = store / LEASE_FILE
            record = json.loads(lease.read_text())
            lease.write_text(json.dumps({**record, "host": "another-node", "boot_id": "another-boot"}))
            result = ray_cli(env, "job", "submit", "--address", address, "--", sys.executable, "-c", probe,
                             str(store))
            assert result.returncode == 0 and outcome in result.stdout, result.stdout + result.stderr
    finally:
        ray_cli(env, "job", "stop", "--address", address, "lensfleet-running")
