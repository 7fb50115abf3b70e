"""deploy/: every YAML/JSON parses; the Ray, Python and JAX versions named agree with pyproject.toml's pins;
every `lensfleet ...` command named is a real CLI command with real options; the cluster launcher configs pass
Ray's own schema; the KubeRay manifests keep head/worker structure (CPU-0 head, GPU workers, token auth,
metrics port); every metric the Grafana dashboard queries is one the system exports (lensfleet's, from
workers/telemetry.py with Ray's Prometheus naming — which tests/scheduler/test_metrics.py checks against a live
scrape — and Ray's node metrics, from the installed Ray's reporter agent); the GPU start-up check's logic.
No docker engine here: the Dockerfile is checked as text."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from scheduler.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKER = DEPLOY / "docker"
sys.path.insert(0, str(DOCKER))
import check_gpu  # noqa: E402

YAMLS = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
JSONS = sorted(DEPLOY.rglob("*.json"))


def pins() -> dict[str, str]:
    """Lower bounds of pyproject.toml: python, ray, jax."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {"python": re.fullmatch(r">=\s*([\d.]+)", project["requires-python"]).group(1)}
    for dep in project["dependencies"]:
        m = re.fullmatch(r"(ray|jax)(\[[^\]]*\])?\s*>=\s*([\d.]+)", dep)
        if m:
            out[m.group(1)] = m.group(3)
    return out


def release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def same_release(named: str, pin: str) -> bool:
    """`named` is the pinned version (2.60 == 2.60.0)."""
    a, b = release(named), release(pin)
    n = max(len(a), len(b))
    return a + (0,) * (n - len(a)) == b + (0,) * (n - len(b))


def docs() -> dict[Path, list]:
    return {p: list(yaml.safe_load_all(p.read_text())) for p in YAMLS}


def walk(node):
    """Every (key, value) pair and every string in a parsed document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def deploy_text() -> str:
    return "\n".join(p.read_text() for p in sorted(DEPLOY.rglob("*")) if p.is_file() and p.suffix != ".pyc")


# --- parsing and versions ---------------------------------------------------------------------------------------

def test_every_file_parses():
    assert YAMLS and JSONS
    for path, documents in docs().items():
        assert documents and all(d is not None for d in documents), path
    for path in JSONS:
        json.loads(path.read_text())


def test_versions_agree_with_pyproject():
    pin = pins()
    assert set(pin) == {"python", "ray", "jax"}
    text = deploy_text()
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM rayproject/ray:\$\{RAY_VERSION\}-\$\{PYTHON_TAG\}-gpu$", dockerfile, re.M)
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M))
    assert same_release(args["RAY_VERSION"], pin["ray"])
    assert same_release(args["JAX_VERSION"], pin["jax"])
    assert args["PYTHON_TAG"] == "py" + pin["python"].replace(".", "")
    assert '"jax[cuda12]==${JAX_VERSION}"' in dockerfile
    # Every Ray image, rayVersion, python tag and jax version named anywhere in deploy/ is the pinned one.
    images = re.findall(r"rayproject/ray:(\d[\d.]*)-(py\d+)", text)
    assert images
    for version, py in images:
        assert same_release(version, pin["ray"]) and py == args["PYTHON_TAG"], (version, py)
    for path, documents in docs().items():
        for key, value in walk(documents):
            if key == "rayVersion":
                assert same_release(str(value), pin["ray"]), path
    for version in re.findall(r"jax(?:\[\w+\])?==([\d.]+)", text):
        assert same_release(version, pin["jax"])


# --- entrypoints --------------------------------------------------------------------------------------------------

def lensfleet_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after `lensfleet`) of every `lensfleet <command> ...` in deploy/'s files: in YAML strings
    (entrypoints, args) and in the commented usage lines (shell continuations joined), a command is a
    `&&`/`;`/` -- `-separated part that starts with `lensfleet `; and the commands of the README's Deploy
    section."""
    found = []
    for path in sorted(DEPLOY.rglob("*")):
        if not path.is_file() or path.suffix not in {".yaml", ".yml", ".sh"}:
            continue
        text = path.read_text()
        sources: list[str] = []
        if path.suffix in {".yaml", ".yml"}:
            for document in yaml.safe_load_all(text):
                sources.extend(strings(document))
        comments = "\n".join(re.sub(r"^\s*#\s?", "", line) for line in text.splitlines() if line.lstrip().startswith("#"))
        # in comments, a command is one with options (`lensfleet run ... --store ...`), not prose
        prose = [line for line in re.sub(r"\\\n", " ", comments).splitlines() if " --" in line]
        for source in sources + prose:
            for part in re.split(r"'&&'|&&|;| -- ", source):  # ` -- `: `ray job submit ... -- lensfleet run ...`
                part = part.strip()
                if part.startswith("lensfleet ") and (source not in prose or " --" in part):
                    found.append((f"{path.relative_to(ROOT)}: {part[:80]}", shlex.split(part)[1:]))
    deploy = (ROOT / "README.md").read_text().split("## Deploy", 1)[1].split("\n## ", 1)[0]
    blocks = re.sub(r"\\\n\s*", " ", "\n".join(line for line in deploy.splitlines() if line.startswith("    ")))
    for line in blocks.splitlines():
        if "lensfleet " in line and " --" in line:
            part = "lensfleet " + line.split("lensfleet ", 1)[1].split("#", 1)[0]
            found.append((f"README.md: {part[:80]}", shlex.split(part)[1:]))
    return found


def test_entrypoints_are_real_commands_with_real_options():
    commands = lensfleet_commands()
    assert any(argv and argv[0] == "run" for _, argv in commands)
    parser = build_parser()
    for where, argv in commands:
        if not argv or not argv[0][0].isalpha():
            continue
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `lensfleet {' '.join(argv)}` does not parse")
        assert args.command == argv[0], where


def test_rayjob_entrypoint_runs_lensfleet_on_gpus():
    rayjob = yaml.safe_load((DEPLOY / "kuberay" / "rayjob.yaml").read_text())
    entrypoint = rayjob["spec"]["entrypoint"]
    run = shlex.split(entrypoint)
    assert run[0] == "lensfleet"
    args = build_parser().parse_args(run[1:])
    assert args.command == "run" and args.gpus_per_actor == 1 and args.store.startswith(("s3://", "gs://"))
    assert args.actors == 4 and args.scale_up_timeout > 0  # the GPU group scales from zero: ask for its nodes
    assert rayjob["spec"]["backoffLimit"] >= 1 and rayjob["spec"]["shutdownAfterJobFinishes"] is True


def test_image_carries_the_scripts_the_configs_call():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text()
    for script in sorted(set(re.findall(r"/opt/lensfleet/([\w.]+)", deploy_text()))):
        assert (DOCKER / script).is_file(), script
        assert f"deploy/docker/{script}" in dockerfile and f"!deploy/docker/{script}" in ignore, script
    for copied in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", dockerfile, re.M):
        for src in copied.split():
            assert (ROOT / src).exists(), src
    assert "LENSFLEET_COMPILE_CACHE=" in dockerfile and "XLA_PYTHON_CLIENT_MEM_FRACTION=" in dockerfile


# --- cluster configs ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_cluster_launcher_configs(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((DEPLOY / "cluster" / name).read_text())
    validate_config(prepare_config(json.loads(json.dumps(config))))  # Ray 2.60's own cluster-config schema
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}
    (worker,) = [t for n, t in config["available_node_types"].items() if n != config["head_node_type"]]
    assert worker["min_workers"] == 0 and worker["resources"]["GPU"] >= 1
    assert "-e LENSFLEET_GPU_CHECK=require" in worker["docker"]["worker_run_options"]
    assert "-e RAY_AUTH_MODE=token" in config["docker"]["run_options"]  # every node's container
    assert config["file_mounts"] == {"/home/ray/.ray/auth_token": "~/.ray/auth_token"}
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-port=8265" in head_start and "--metrics-export-port=8080" in head_start
    assert "--dashboard-host=127.0.0.1" in head_start  # reached through `ray dashboard`'s SSH tunnel only
    assert "(umask 077; ray get-auth-token --generate > /dev/null)" in (DEPLOY / "cluster" / name).read_text()
    assert "--metrics-export-port=8080" in " ".join(config["worker_start_ray_commands"])


def _cluster_specs():
    raycluster = yaml.safe_load((DEPLOY / "kuberay" / "raycluster.yaml").read_text())
    rayjob = yaml.safe_load((DEPLOY / "kuberay" / "rayjob.yaml").read_text())
    return [("raycluster", raycluster["spec"]), ("rayjob", rayjob["spec"]["rayClusterSpec"])]


@pytest.mark.parametrize("which", ["raycluster", "rayjob"])
def test_kuberay_cluster_spec(which):
    spec = dict(_cluster_specs())[which]
    assert spec["authOptions"] == {"mode": "token"} and spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0" and head["rayStartParams"]["dashboard-port"] == "8265"
    (gpu,) = spec["workerGroupSpecs"]
    assert gpu["minReplicas"] == 0 and gpu["maxReplicas"] >= 1
    (container,) = gpu["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] >= 1
    assert gpu["template"]["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    assert "check_gpu.py &&" in container["args"][0] and "$KUBERAY_GEN_RAY_START_CMD" in container["args"][0]
    for pod in (head["template"]["spec"], gpu["template"]["spec"]):
        (c,) = pod["containers"]
        assert {"containerPort": 8080, "name": "metrics"} in c["ports"]
    for group in (head, gpu):
        assert group["rayStartParams"]["metrics-export-port"] == "8080"


def test_podmonitor_scrapes_the_metrics_port():
    monitor = yaml.safe_load((DEPLOY / "kuberay" / "podmonitor.yaml").read_text())
    assert monitor["kind"] == "PodMonitor"
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    labels = monitor["spec"]["selector"]["matchLabels"]
    for _, spec in _cluster_specs():
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
            pod_labels = {**group["template"]["metadata"]["labels"], "ray.io/is-ray-node": "yes"}
            assert labels.items() <= pod_labels.items()


# --- Grafana ------------------------------------------------------------------------------------------------------

def exported_lensfleet_metrics() -> set[str]:
    """Prometheus names of workers/telemetry.py's metrics: Ray adds `ray_`; counters get `_total`, histograms
    `_bucket`/`_sum`/`_count` (the naming tests/scheduler/test_metrics.py checks against a live scrape)."""
    from workers.telemetry import METRIC_NAMES

    source = (ROOT / "workers" / "telemetry.py").read_text()
    kinds = dict((name, kind) for kind, name in re.findall(r"_(counter|gauge|histogram)\(\s*\"(lensfleet_\w+)\"", source))
    assert set(kinds) == set(METRIC_NAMES)
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    return {f"ray_{name}{s}" for name, kind in kinds.items() for s in suffixes[kind]}


def ray_node_metrics() -> set[str]:
    """Ray's node metrics (the reporter agent's gauges) in the installed Ray, with their `ray_` prefix."""
    import importlib.util

    source = Path(importlib.util.find_spec("ray.dashboard.modules.reporter.reporter_agent").origin).read_text()
    return {f"ray_{name}" for name in re.findall(r"^\s+\"(node_\w+)\": Gauge\(", source, re.M)}


def dashboard_queries(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(var["query"]["query"] if isinstance(var["query"], dict) else var["query"])
    return exprs


def test_grafana_dashboard_imports_beside_rays():
    dashboard = json.loads((DEPLOY / "grafana" / "lensfleet.json").read_text())
    assert dashboard["uid"] == "lensfleet" and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for word in ("throughput", "failed", "in flight", "latency", "compile", "memory", "gpu utilisation"):
        assert word in titles, word


def test_grafana_queries_name_exported_metrics():
    dashboard = json.loads((DEPLOY / "grafana" / "lensfleet.json").read_text())
    known = exported_lensfleet_metrics() | ray_node_metrics()
    assert {"ray_node_gpus_utilization", "ray_node_gram_used"} <= known
    used = set()
    for expr in dashboard_queries(dashboard):
        names = set(re.findall(r"\b(ray_\w+)", expr))
        assert names, expr
        assert names <= known, (expr, names - known)
        if "histogram_quantile" in expr:
            assert all(n.endswith("_bucket") for n in names) and "by (le" in expr, expr
        used |= names
    from workers.telemetry import METRIC_NAMES

    for name in METRIC_NAMES:  # every lensfleet metric is on the dashboard
        assert any(u.startswith(f"ray_{name}") for u in used), name


# --- GPU start-up check and GPU wait ------------------------------------------------------------------------------

def test_gpu_expected():
    expected = check_gpu.gpu_expected
    assert expected({}, []) == (False, "no NVIDIA devices given to this container")
    assert expected({"NVIDIA_VISIBLE_DEVICES": "all"}, [])[0] is False  # the CUDA image's default, on the head
    assert expected({"NVIDIA_VISIBLE_DEVICES": "GPU-1234abcd"}, [])[0] is True
    assert expected({}, ["/dev/nvidia0"])[0] is True
    assert expected({"LENSFLEET_GPU_CHECK": "require"}, [])[0] is True
    assert expected({"LENSFLEET_GPU_CHECK": "off"}, ["/dev/nvidia0"])[0] is False
    with pytest.raises(ValueError):
        expected({"LENSFLEET_GPU_CHECK": "maybe"}, [])


def test_gpu_check_fails_loudly_without_a_gpu():
    env = {"PATH": "/usr/bin:/bin", "LENSFLEET_GPU_CHECK": "require", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(DOCKER / "check_gpu.py")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and "GPU CHECK FAILED" in done.stderr


def test_gpu_check_skips_where_no_gpu_was_given(monkeypatch, capsys):
    monkeypatch.setenv("LENSFLEET_GPU_CHECK", "off")
    assert check_gpu.main() == 0 and "skipped" in capsys.readouterr().err


def test_the_local_head_script_requires_a_private_token_and_binds_to_loopback():
    script = (DEPLOY / "local" / "start-head.sh").read_text()
    lines = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert lines[:2] == ["set -euo pipefail", "umask 077"]
    assert 'chmod 600 "${token}"' in lines and "export RAY_AUTH_MODE=token" in lines
    assert lines[-1] == 'exec ray start --head --node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1 "$@"'
    assert os.access(DEPLOY / "local" / "start-head.sh", os.X_OK)
