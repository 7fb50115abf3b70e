"""Batched evaluation equals one-at-a-time evaluation, padding and chunking included (fp64, 1e-9 relative)."""

from __future__ import annotations

import os
import threading

import jax
import numpy as np
import pytest

from reference_cases import case_model, load_reference_lens
from workers.inversion.batch import common_bucket, evaluate, evaluate_block, stack
from workers.inversion.fit import DEGENERATE_FIGURE_OF_MERIT, TERMS, fit
from workers.inversion.imaging import pad_to_bucket


def _close(a, b, rtol=1e-9):
    a, b = np.asarray(a), np.asarray(b)
    return np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(a), 1.0))


def _vectors(lens, n, seed):
    base = lens.vectors("mge", with_source=True)[0]
    return base + 0.01 * np.random.default_rng(seed).standard_normal((n, base.size))


def test_vmap_over_vectors_equals_single_calls():
    lens = load_reference_lens("A0")
    model = case_model("mge_pos")
    vectors = _vectors(lens, 5, seed=1)
    batched = evaluate(lens.imaging, vectors, model)
    single = jax.jit(fit, static_argnums=(2, 3))
    for i, v in enumerate(vectors):
        one = single(lens.imaging, v, model, False)
        for term in TERMS:
            assert _close(getattr(batched, term)[i], getattr(one, term)), term


def test_block_of_lenses_of_different_sizes_equals_each_lens_alone():
    lenses = [load_reference_lens("A0"), load_reference_lens("B0")]
    assert lenses[0].imaging.bucket != lenses[1].imaging.bucket
    model = case_model("mge")
    vectors = np.stack([_vectors(lens, 3, seed=i) for i, lens in enumerate(lenses)])
    block = evaluate_block(stack([lens.imaging for lens in lenses]), vectors, model, with_arrays=True)
    for i, lens in enumerate(lenses):
        alone = evaluate(lens.imaging, vectors[i], model, with_arrays=True)
        for term in TERMS:
            assert _close(getattr(block, term)[i], getattr(alone, term)), (lens.name, term)
        n = lens.imaging.bucket.pixels
        padded_model = np.asarray(block.model_image[i])
        assert np.all(padded_model[:, n:] == 0.0)
        scale = np.abs(np.asarray(alone.model_image)).max()
        assert np.abs(padded_model[:, :n] - np.asarray(alone.model_image)).max() <= 1e-9 * scale


def test_padding_to_a_bigger_bucket_changes_no_number():
    lens = load_reference_lens("A0")
    model = case_model("mge_pos")
    bucket = common_bucket([lens.imaging.bucket, load_reference_lens("B0").imaging.bucket])
    padded = pad_to_bucket(lens.imaging, bucket)
    assert padded.bucket.canvas[0] > lens.imaging.bucket.canvas[0] and padded.bucket.psf > lens.imaging.bucket.psf
    vectors = _vectors(lens, 3, seed=2)
    a = evaluate(lens.imaging, vectors, model)
    b = evaluate(padded, vectors, model)
    for term in TERMS:
        assert _close(getattr(a, term), getattr(b, term)), term


def test_chunked_evaluation_equals_one_vmap():
    lens = load_reference_lens("A0")
    model = case_model("mge_pos")
    vectors = _vectors(lens, 5, seed=3)
    whole = evaluate(lens.imaging, vectors, model)
    for chunk in (1, 2):  # 2 leaves a padded last chunk
        part = evaluate(lens.imaging, vectors, model, chunk=chunk)
        for term in TERMS:
            assert _close(getattr(part, term), getattr(whole, term)), (chunk, term)


def test_a_chunked_block_evaluates_active_lenses_alone_and_skips_the_others():
    lenses = [load_reference_lens("A0"), load_reference_lens("B0")]
    model = case_model("mge")
    vectors = np.stack([_vectors(lens, 3, seed=i) for i, lens in enumerate(lenses)])
    block = evaluate_block(stack([lens.imaging for lens in lenses]), vectors, model, with_arrays=True, chunk=2,
                           active=np.array([False, True]))
    alone = evaluate(lenses[1].imaging, vectors[1], model, with_arrays=True)
    for term in TERMS:
        assert _close(getattr(block, term)[1], getattr(alone, term)), term
        assert np.all(np.asarray(getattr(block, term)[0]) == DEGENERATE_FIGURE_OF_MERIT), term
    assert np.all(np.asarray(block.model_image[0]) == 0.0)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the pool needs two CPUs")
def test_single_evaluations_of_a_block_run_on_every_cpu_with_each_lens_alone_s_bits():
    lenses = [load_reference_lens("A0"), load_reference_lens("B0"), load_reference_lens("A0")]
    model = case_model("mge_pos")
    vectors = np.stack([_vectors(lens, 4, seed=i) for i, lens in enumerate(lenses)])
    block = evaluate_block(stack([lens.imaging for lens in lenses]), vectors, model, chunk=1,
                           active=np.array([True, False, True]))
    assert sum(t.name.startswith("lensfleet-eval") for t in threading.enumerate()) >= 2  # the pool ran them
    padded = common_bucket([lens.imaging.bucket for lens in lenses])
    for i in (0, 2):
        lens = jax.device_put(pad_to_bucket(lenses[i].imaging, padded))
        alone = [evaluate(lens, v[None], model) for v in vectors[i]]
        for term in TERMS:
            assert np.array_equal(getattr(block, term)[i], [getattr(a, term)[0] for a in alone]), (i, term)


def test_a_block_cut_into_calls_of_fewer_lenses_gives_the_same_numbers():
    lenses = [load_reference_lens("A0"), load_reference_lens("B0"), load_reference_lens("A0")]
    model = case_model("mge")
    vectors = np.stack([_vectors(lens, 2, seed=i) for i, lens in enumerate(lenses)])
    stacked = stack([lens.imaging for lens in lenses])
    whole = evaluate_block(stacked, vectors, model)
    cut = evaluate_block(stacked, vectors, model, lenses_per_call=2)  # calls of 2 lenses, the last padded
    for term in TERMS:
        assert _close(getattr(cut, term), getattr(whole, term)), term
