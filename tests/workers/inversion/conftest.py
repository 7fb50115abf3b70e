"""Fixtures for engine tests: the reference lenses, loaded once per session."""

from __future__ import annotations

import pytest

from reference_cases import DATASETS, ReferenceLens, load_reference_lens


@pytest.fixture(scope="session", params=DATASETS)
def reference_lens(request) -> ReferenceLens:
    return load_reference_lens(request.param)
