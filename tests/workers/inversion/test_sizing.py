"""Batch sizing: a plan stays within the device memory it is given, from the compiled programs' own memory
analysis; its eval chunk is the device's rule, never a timing (no timing is asserted: a benchmark records speed)."""

from __future__ import annotations

import numpy as np

from workers.inversion.imaging import prepare_imaging
from workers.inversion.sizing import free_memory_bytes, lane_memory, plan_batch
from workers.model.description import MGEBasis, Model
from workers.model.settings import Settings

MODEL = Model(source=MGEBasis(gaussians=5, sigma_min=0.05), settings=Settings(use_positive_only_solver=True))


def _small_lens():
    y, x = np.mgrid[-1:2, -1:2]
    image = np.random.default_rng(3).normal(1.0, 0.1, (30, 30))
    imaging = prepare_imaging(image, np.full((30, 30), 0.1), np.exp(-(x**2 + y**2)), 0.1, mask_radius=1.2,
                              over_sample_size_lp=2, over_sample_size_pixelization=2)
    vector = np.array([0.0, 0.0, 0.05, 0.0, 0.8, 0.0, 0.0, 0.05, 0.0, 0.1, 0.0])
    return imaging, vector + 1e-3 * np.random.default_rng(0).standard_normal((8, vector.size))


def test_memory_grows_linearly_with_the_lanes_and_the_device_reports_free_memory():
    imaging, vectors = _small_lens()
    fixed, lane = lane_memory(imaging, vectors[0], MODEL)
    assert lane > 0 and fixed >= 0
    assert 0 < free_memory_bytes()


def test_a_plan_chooses_the_chunk_by_device_fits_its_memory_and_measures_only_when_asked():
    imaging, vectors = _small_lens()
    plan = plan_batch(imaging, vectors, MODEL, lenses=4)
    assert plan.eval_chunk == 1 and plan.ms_per_evaluation == {}  # a CPU: one evaluation per call, no timing
    lanes = plan.vectors_per_lens * plan.lenses_per_call if plan.eval_chunk == 0 else plan.eval_chunk
    assert plan.fixed_bytes + lanes * plan.lane_bytes <= plan.free_bytes
    assert plan.lenses_per_call == 4 and plan.vectors_per_lens == 8
    assert plan_batch(imaging, vectors, MODEL, lenses=4) is plan  # planned once per device, model and bucket
    measured = plan_batch(imaging, vectors, MODEL, lenses=4, measure=True)  # what bench reports
    assert set(measured.ms_per_evaluation) == {1, 2, 4, 8} and all(t > 0 for t in measured.ms_per_evaluation.values())
    assert (measured.eval_chunk, measured.lenses_per_call) == (plan.eval_chunk, plan.lenses_per_call)


def test_with_room_for_two_evaluations_only_chunks_of_at_most_two_are_timed():
    imaging, vectors = _small_lens()
    fixed, lane = lane_memory(imaging, vectors[0], MODEL)
    fraction = (fixed + 2.5 * lane) / free_memory_bytes()
    plan = plan_batch(imaging, vectors, MODEL, lenses=4, memory_fraction=fraction, measure=True)
    assert plan.eval_chunk == 1 and set(plan.ms_per_evaluation) == {1, 2}
    assert plan.fixed_bytes + plan.eval_chunk * plan.lane_bytes <= plan.free_bytes
