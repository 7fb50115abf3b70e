"""The scheduler tests' local Ray cluster: one node, 2 CPUs, per test module (a module that needs another kind of
cluster defines its own `cluster`)."""

from __future__ import annotations

import pytest
import ray


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local cluster for the module; yields its GCS address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
