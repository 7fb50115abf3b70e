"""The gradient search (fit.toml `[search] type = "gradient"`): the lenses of a block fitted at once on the device
by multi-start optimisation, then a posterior from a Laplace approximation at the best start, importance-sampled.

Space. A search works in z = logit(u), u the unit cube of the priors (priors.py): any z is a point inside the
priors' support, so an optimiser cannot leave a bounded prior. The posterior density in z is

    log p(z | d) = F(x(z)) + Σ_i [log σ(z_i) + log σ(−z_i)] − log Z,      x(z) = prior transform of σ(z),

F the figure of merit Nautilus samples (the inversion's log evidence) and σ the logistic function (the second
term is the prior pushed into z: u uniform ⇔ z logistic). Every phase is one compiled call over the block
(lenses × points; vmap over lenses, or with eval_chunk > 0, as on a CPU, a call per lens, the lenses on
batch.cpu_pool's threads side by side, idle slots of the block not evaluated):

1. starts: `screen` points per lens drawn from the priors (u uniform, with the lens's own seed,
   samplers.lens_seed: `starts` draws, then screen − starts from a stream of their own, so the screen changes
   the later phases' draws only through the start it finds) and their log p evaluated; the `starts` highest
   (screen 0: the `starts` draws) are each optimised for `steps` iterations of optax L-BFGS (zoom line search)
   or Adam (cosine-decayed `learning_rate`) on −log p(z | d); the best start is the one with the largest log p.
   The screen costs `screen` evaluations (no gradients) and starts the optimiser where the data already favour.
   `lensing_screen`, with a lens light in the model: a second screen of `screen` more draws of every coordinate
   but the lens light's, which are held at the first screen's best (a stream of the lens's own), the starts the
   best of both.
   A real lens galaxy outshines its arcs, so the first screen ranks its draws by the lens light almost alone;
   the second ranks mass, shear and source against the arcs (SLaM's order: the light, then the lensing).
   Measured on the SLACS lenses (benchmarks/RESULTS_real.md).
2. Laplace: H = −∇² log p at the best start, by central differences of the exact gradient (two passes: the
   second with steps of HESSIAN_STEP × the first pass's σ). H is made positive definite by flooring its
   eigenvalues.
3. posterior: two rounds of `posterior_samples`/2 draws from a multivariate Student t (ν = STUDENT_NU), the first
   with centre ẑ and scale H⁻¹, the second at the first round's weighted mean and covariance (adaptive importance
   sampling: it repairs a Laplace approximation that is off-centre or too narrow); every draw is weighted
   against the even mixture of the two proposals by Pareto-smoothed importance sampling (PSIS, Vehtari et al.).
   The stored samples are those draws in parameter space with their weights; `search_pareto_k` is PSIS's k̂
   (< 0.7: the weights are reliable), `effective_samples` their Kish size (Σw)²/Σw².

Why importance sampling and not NUTS (benchmarks/RESULTS_search.md, reference A0): the weights of 1,000 draws gave
806 effective samples (k̂ 0.12) for 1,000 evaluations; blackjax NUTS started at the optimum with H⁻¹ as its
mass matrix needed 4.7 value-and-gradients per effective sample (≈ 3,800 for the same N_eff, 4–9× the cost, and
it needs the Laplace step anyway for its mass matrix).

Log evidence: the importance-sampling estimate log Z = log mean_k(p̃(z_k)/q(z_k)) (p̃ the unnormalised
posterior), not Nautilus's nested-sampling one; its error 1/√N_eff as for Nautilus. The Laplace estimate
F̂ + log prior(ẑ) + (d/2) log 2π − ½ log det H is its fallback when the weights are unusable.

Starts that disagree. With ẑ the best start and t_j = log p at start j: start j reached the best mode if
(z_j − ẑ)ᵀH(z_j − ẑ) ≤ SAME_MODE²; `search_multimodal` is 1 when some start within `mode_tolerance` of the best
log p lies outside it (another mode nearly as good), or no other start reached the best mode (the best stands
far above the rest, so the global one may be missing too): a pipeline can hand such lenses to Nautilus. The sets
of an MGE with several (model.description.MGEBasis.bases) are exchangeable when their ell_comps have the same
priors: swapping two sets' ell_comps leaves log p unchanged, so before this distance each start's sets are
matched to the best start's (the assignment of least squared distance): mirror images are one mode.
`search_starts_at_best` counts the starts that reached it. `converged`: the best start's Newton decrement
½ gᵀH⁻¹g is below 0.1 and H needed no flooring.

The positive-only solve works: its answer is one masked solve on the active set the search certified
(inversion/positive_only.py), so the gradient is the exact derivative on that (locally constant) set;
tests/workers/test_gradient_search.py checks it against finite differences. Gradients are 0 where the figure of
merit is degenerate (fit.DEGENERATE_FIGURE_OF_MERIT).

Determinism: a lens's draws come from its own seed, and XLA computes each lens's lane with the same code, so a
block re-run (after a kill: there is nothing to resume, a block's searches take one pass) gives the same result.
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import Sequence

import numpy as np

from .inversion import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import optax
from blackjax.diagnostics import psis_weights
from scipy import optimize, special, stats

from .config import SearchOptions
from .inversion.batch import cpu_pool, stack
from .inversion.fit import DEGENERATE_FIGURE_OF_MERIT, check_model_fits, fit
from .inversion.imaging import MaskedImaging
from .model.buckets import Bucket
from .model.description import Model
from .posterior import LensSearch, weighted_quantiles
from .priors import FixedPrior, GaussianPrior, LogUniformPrior, PriorTransform, TruncatedGaussianPrior, UniformPrior
from .samplers import lens_seed
from .coordinator import SearchProgress
from .search import BlockSearch, _attach_fits, block_plan

__all__ = ["gradient_search_block", "cube_arrays", "physical"]

SAME_MODE = 3.0  # Mahalanobis radius (in the Laplace metric) within which a start counts as at the best mode
STUDENT_NU = 4.0  # degrees of freedom of the importance-sampling proposal (10 left PSIS k̂ > 0.7 on a simulated
#                   lens of tests/workers/test_gradient_search.py; 4: every k̂ < 0.65 at 400 and 1,000 draws)
HESSIAN_STEP = 0.2  # the second finite-difference pass's steps, in units of the first pass's sigma
STALL_STEPS, STALL_GAIN = 5, 1e-2  # a start stops once log p gained < STALL_GAIN in STALL_STEPS iterations
_U_EPS = 1e-12


# --- the prior transform in JAX ----------------------------------------------------------------------------


def cube_arrays(prior: PriorTransform) -> dict[str, np.ndarray]:
    """The priors as arrays for `physical`: per free dimension kind (0 uniform, 1 gaussian, 2 truncated
    gaussian, 3 log-uniform), a, b (lower, upper; mean, sigma; ln lower, ln upper), the truncation's CDF span
    (ca, cb) and clip bounds; `base`, the full vector with the fixed parameters' values."""
    free = prior.free
    kind, a, b, ca, cb, lo, hi = (np.zeros(len(free)) for _ in range(7))
    for k, i in enumerate(free):
        p = prior.priors[i]
        lo[k], hi[k] = p.support()
        if isinstance(p, UniformPrior):
            kind[k], a[k], b[k] = 0, p.lower, p.upper
        elif isinstance(p, GaussianPrior):
            kind[k], a[k], b[k] = 1, p.mean, p.sigma
        elif isinstance(p, TruncatedGaussianPrior):
            kind[k], a[k], b[k] = 2, p.mean, p.sigma
            ca[k], cb[k] = special.ndtr((p.lower - p.mean) / p.sigma), special.ndtr((p.upper - p.mean) / p.sigma)
        elif isinstance(p, LogUniformPrior):
            kind[k], a[k], b[k] = 3, np.log(p.lower), np.log(p.upper)
        else:
            raise TypeError(f"no transform for prior {p!r}")
    base = np.array([p.value if isinstance(p, FixedPrior) else 0.0 for p in prior.priors])
    return {"kind": kind, "a": a, "b": b, "ca": ca, "cb": cb, "lo": lo, "hi": hi, "base": base}


def physical(z: jax.Array, cube: dict, free: tuple[int, ...]) -> jax.Array:
    """The parameter vector at z = logit(u): priors.PriorTransform of u = σ(z), in JAX."""
    u = jnp.clip(jax.nn.sigmoid(z), _U_EPS, 1.0 - _U_EPS)
    uniform = cube["a"] + u * (cube["b"] - cube["a"])
    gaussian = cube["a"] + cube["b"] * jax.scipy.special.ndtri(u)
    truncated = cube["a"] + cube["b"] * jax.scipy.special.ndtri(cube["ca"] + u * (cube["cb"] - cube["ca"]))
    log_uniform = jnp.exp(jnp.where(cube["kind"] == 3, cube["a"] + u * (cube["b"] - cube["a"]), 0.0))
    x = jnp.select([cube["kind"] == 0, cube["kind"] == 1, cube["kind"] == 2], [uniform, gaussian, truncated],
                   log_uniform)
    return jnp.asarray(cube["base"]).at[jnp.asarray(free)].set(jnp.clip(x, cube["lo"], cube["hi"]))


def _log_posterior(z, imaging, cube, model: Model, free) -> tuple[jax.Array, jax.Array]:
    """(log p(z | d) + log Z, F(x(z))): the module docstring's density, and the figure of merit."""
    merit = fit(imaging, physical(z, cube, free), model).figure_of_merit
    merit = jnp.where(jnp.isfinite(merit), merit, DEGENERATE_FIGURE_OF_MERIT)
    return merit + jnp.sum(jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z)), merit


def _per_lens(fn, chunked: bool):
    """fn over the lens axis of its arguments: vmap, or (chunked, as on a CPU) lax.map, one lens at a time."""
    return (lambda *args: jax.lax.map(lambda a: fn(*a), args)) if chunked else jax.vmap(fn)


# --- the compiled phases -----------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("model", "free", "optimizer", "steps", "learning_rate", "chunked"))
def _optimise(imagings, z0, cubes, model, free, optimizer, steps, learning_rate, chunked):
    """Phase 1: every start (L, S, d) optimised for at most `steps` iterations, stopping once log p gained less
    than STALL_GAIN over the last STALL_STEPS iterations; returns each start's best z, its log p and F, and the
    value-and-gradient evaluations it took. Chunked (a CPU): the starts one after another, each stopping on
    its own; else all at once (vmap: a start that stopped waits for the others)."""

    def lens(imaging, starts, cube):
        def loss(z):
            return -_log_posterior(z, imaging, cube, model, free)[0]

        if optimizer == "lbfgs":
            opt = optax.lbfgs(linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=20))
            value_and_grad = optax.value_and_grad_from_state(loss)
        else:
            opt = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.01))
            value_and_grad = jax.value_and_grad(loss)

        def one(z):
            def step(carry):
                i, z, state, best_z, history, calls = carry
                if optimizer == "lbfgs":
                    value, grad = value_and_grad(z, state=state)
                    grad = jnp.nan_to_num(grad)
                    updates, state = opt.update(grad, state, z, value=value, grad=grad, value_fn=loss)
                    calls += 1 + optax.tree.get(state, "info").num_linesearch_steps
                else:
                    value, grad = value_and_grad(z)
                    updates, state = opt.update(jnp.nan_to_num(grad), state, z)
                    calls += 1
                best_z = jnp.where(value < history[-1], z, best_z)
                history = jnp.append(history[1:], jnp.minimum(value, history[-1]))
                return i + 1, optax.apply_updates(z, updates), state, best_z, history, calls

            def going(carry):
                i, history = carry[0], carry[4]
                return (i < steps) & ~(history[0] - history[-1] < STALL_GAIN)

            history = jnp.full(STALL_STEPS + 1, jnp.inf)
            init = (0, z, opt.init(z), z, history, 0)
            _, _, _, best_z, _, calls = jax.lax.while_loop(going, step, init)
            log_p, merit = _log_posterior(best_z, imaging, cube, model, free)
            return best_z, log_p, merit, calls + 1

        return jax.lax.map(one, starts) if chunked else jax.vmap(one)(starts)

    return _per_lens(lens, chunked)(imagings, z0, cubes)


@partial(jax.jit, static_argnames=("model", "free", "chunked"))
def _gradients(imagings, points, cubes, model, free, chunked):
    """log p, F and ∇ log p at points (L, V, d); chunked (as on a CPU), one point at a time: a batched LAPACK call
    (the solves' transposes) can deadlock XLA's CPU thread pool (inversion/sizing.py)."""

    def lens(imaging, z, cube):
        value_and_grad = jax.value_and_grad(lambda v: _log_posterior(v, imaging, cube, model, free), has_aux=True)
        (log_p, merit), grad = jax.lax.map(value_and_grad, z) if chunked else jax.vmap(value_and_grad)(z)
        return log_p, merit, jnp.nan_to_num(grad)

    return _per_lens(lens, chunked)(imagings, points, cubes)


@partial(jax.jit, static_argnames=("free",))
def _to_physical(points, cubes, free):
    """Parameter vectors (L, N, n) at points (L, N, d)."""
    return jax.vmap(lambda z, cube: jax.vmap(lambda v: physical(v, cube, free))(z))(points, cubes)


@partial(jax.jit, static_argnames=("model", "free", "chunk"))
def _densities(imagings, points, cubes, model, free, chunk):
    """log p and F at points (L, N, d), `chunk` points of a lens at a time (0: all of them)."""

    def lens(imaging, z, cube):
        one = lambda v: _log_posterior(v, imaging, cube, model, free)  # noqa: E731
        return jax.vmap(one)(z) if chunk == 0 else jax.lax.map(one, z, batch_size=chunk)

    return _per_lens(lens, chunk > 0)(imagings, points, cubes)


# --- host side ---------------------------------------------------------------------------------------------


def _hessian(imagings, centre, steps, cubes, model, free, chunked) -> tuple[np.ndarray, np.ndarray]:
    """(−∇² log p (L, d, d), ∇ log p (L, d)) at `centre` (L, d), the first by central differences of the
    gradient with steps (L, d)."""
    n_lenses, d = centre.shape
    offsets = np.einsum("ld,dk->lkd", steps, np.eye(d))  # (L, d, d): row k moves coordinate k
    points = np.concatenate([centre[:, None] + offsets, centre[:, None] - offsets, centre[:, None]], axis=1)
    grad = np.asarray(_gradients(imagings, points, cubes, model, free, chunked)[2])
    h = -(grad[:, :d] - grad[:, d:2 * d]) / (2 * steps[:, :, None])  # (L, k, i) = −∂g_i/∂z_k
    return 0.5 * (h + np.swapaxes(h, 1, 2)), grad[:, 2 * d]


def _floored(h: np.ndarray) -> tuple[np.ndarray, bool]:
    """H with its eigenvalues floored at 1e-6 of the largest (and at 1e-8), and whether it needed it."""
    values, vectors = np.linalg.eigh(h)
    floor = max(1e-6 * np.max(np.abs(values)), 1e-8)
    return (vectors * np.maximum(values, floor)) @ vectors.T, bool(values.min() > floor)


def _student(rng: np.random.Generator, n: int, centre: np.ndarray, covariance: np.ndarray):
    """n draws of the multivariate Student t (STUDENT_NU) of this centre and scale, and its frozen density."""
    d = len(centre)
    normal, chi2 = rng.standard_normal((n, d)), rng.chisquare(STUDENT_NU, n) / STUDENT_NU
    points = centre + (normal @ np.linalg.cholesky(covariance).T) / np.sqrt(chi2)[:, None]
    return points, stats.multivariate_t(centre, covariance, df=STUDENT_NU)


def _moments(points: np.ndarray, log_ratio: np.ndarray, fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weighted mean and covariance of draws (the second round's proposal), their covariance floored by
    `fallback`/4 so that a few dominant weights cannot collapse it."""
    w = np.exp(log_ratio - np.max(log_ratio[np.isfinite(log_ratio)]))
    w = np.where(np.isfinite(w), w, 0.0)
    w /= w.sum()
    mean = w @ points
    covariance = (points - mean).T @ ((points - mean) * w[:, None])
    return mean, _floored(covariance + fallback / 4)[0]


def gradient_search_block(
    imagings: list[MaskedImaging],
    dataset_ids: list[str],
    model: Model,
    priors: Sequence[PriorTransform],
    options: SearchOptions,
    *,
    bucket: Bucket | None = None,
    with_fit: bool = True,
    slots: int | None = None,
    progress: SearchProgress | None = None,
) -> BlockSearch:
    """Search every lens of a block by the gradient search (module docstring), each with its own priors; as
    search.search_block (`bucket`, `with_fit`, `slots`: compile for this many lenses, the extra ones idle copies
    of the first lens, `progress`: counts updated after every compiled call), with BlockSearch's accounting
    (block_calls: compiled calls; likelihood_s: their time)."""
    if not (len(imagings) == len(dataset_ids) == len(priors)) or not imagings:
        raise ValueError("give one dataset id and one prior transform per imaging, and at least one")
    free = priors[0].free
    if any(p.free != free for p in priors):
        raise ValueError("every lens of a block must have the same free parameters")
    n_lenses, d = len(imagings), len(free)
    n_slots = max(slots or n_lenses, n_lenses)
    lens_priors = list(priors) + [priors[0]] * (n_slots - n_lenses)
    stacked = stack(imagings + [imagings[0]] * (n_slots - n_lenses), bucket)
    check_model_fits(stacked, model)
    cubes = jax.tree.map(lambda *a: np.stack(a), *[cube_arrays(p) for p in lens_priors])
    medians = np.stack([p.median() for p in lens_priors])
    eval_chunk = block_plan(stacked, np.repeat(medians[:, None], options.starts, axis=1), model, options.eval_chunk)[0]
    chunked = eval_chunk > 0
    rngs = [np.random.default_rng(lens_seed(options.seed, i)) for i in dataset_ids]
    rngs += [np.random.default_rng(0)] * (n_slots - n_lenses)
    start = time.perf_counter()
    device_s = [0.0]  # seconds in the compiled calls (the figure of merit and its gradients)
    progress = SearchProgress() if progress is None else progress
    progress.searches += n_lenses

    def on_device(fn, *args, lensed: int = 3, per_lens: int = 0):
        """fn's arrays for the block, its first `lensed` arguments carrying the lens axis: one call over the block,
        or when chunked (a CPU) a call per lens, on batch.cpu_pool's threads (lens 0 first, on this thread, so
        that a shape compiles once), idle slots copying lens 0's result. The progress counts its evaluations
        (per_lens each, or the optimiser's own counts)."""
        began = time.perf_counter()
        if chunked:
            def one(i):
                return jax.tree.map(np.asarray, fn(*[jax.tree.map(lambda a: a[i : i + 1], x) for x in args[:lensed]],
                                                   *args[lensed:]))
            pool = cpu_pool()
            parts = [one(0), *(pool.map(one, range(1, n_lenses)) if pool else map(one, range(1, n_lenses)))]
            out = jax.tree.map(lambda *p: np.concatenate(p), *parts, *[parts[0]] * (n_slots - n_lenses))
        else:
            out = jax.tree.map(np.asarray, fn(*args))
        device_s[0] += time.perf_counter() - began
        progress.likelihood_s += time.perf_counter() - began
        progress.evaluations += n_lenses * per_lens or int(out[-1][:n_lenses].sum())
        return out

    # 1. the screen, then multi-start optimisation from its best draws
    def draws(generators, n):  # (L, n, d) prior draws in z
        return special.logit(np.clip(np.stack([r.uniform(size=(n, d)) for r in generators]), 1e-6, 1 - 1e-6))

    def streams(k):  # each lens's k-th stream of its own
        return ([np.random.default_rng([lens_seed(options.seed, i), k]) for i in dataset_ids]
                + [np.random.default_rng(k)] * (n_slots - n_lenses))

    def ranked(points, values):  # points (L, N, d) in decreasing order of values (L, N), non-finite last
        order = np.argsort(-np.where(np.isfinite(values), values, -np.inf), axis=1, kind="stable")
        return np.take_along_axis(points, order[..., None], axis=1), np.take_along_axis(values, order, axis=1)

    z0 = draws(rngs, options.starts)
    light = np.array([lens_priors[0].names[k].startswith("lens.light.") for k in free])  # its z coordinates
    screens = (2 if options.lensing_screen and light.any() and not light.all() else 1) if options.screen else 0
    if options.screen:  # the starts' own draws and screen − starts more, from a stream of their own
        z0 = np.concatenate([z0, draws(streams(1), options.screen - options.starts)], axis=1)
        z0, values = ranked(z0, on_device(_densities, stacked, z0, cubes, model, free, eval_chunk,
                                          per_lens=options.screen)[0])
    if screens == 2:  # the lensing screen: the lens light held at the first screen's best, the rest redrawn
        z1 = draws(streams(2), options.screen)
        z1[:, :, light] = z0[:, :1, light]
        z1, values1 = ranked(z1, on_device(_densities, stacked, z1, cubes, model, free, eval_chunk,
                                           per_lens=options.screen)[0])
        z0, values = ranked(np.concatenate([z0, z1], axis=1), np.concatenate([values, values1], axis=1))
    z0 = z0[:, :options.starts]
    z, log_p, merit, calls = on_device(_optimise, stacked, z0, cubes, model, free, options.optimizer, options.steps,
                                       options.learning_rate, chunked)
    best = np.argmax(np.where(np.isfinite(log_p), log_p, -np.inf), axis=1)
    centre = z[np.arange(n_slots), best]
    evaluations = calls.sum(axis=1) + screens * options.screen

    # 2. Laplace: two passes of finite differences, the second with steps of a fifth of the first's sigma (the
    # first pass's H where the second's is not positive definite and the first's is)
    h1, _ = on_device(_hessian, stacked, centre, np.full((n_slots, d), 1e-4), cubes, model, free, chunked,
                      lensed=4, per_lens=2 * d + 1)
    sigma = np.stack([np.sqrt(np.diag(np.linalg.inv(_floored(m)[0]))) for m in h1])
    h2, grad = on_device(_hessian, stacked, centre, np.clip(HESSIAN_STEP * sigma, 1e-6, 0.5), cubes, model, free,
                         chunked, lensed=4, per_lens=2 * d + 1)
    evaluations += 2 * (2 * d + 1)  # two passes, each the centre and ± a step on every axis
    floored = []
    for m1, m2 in zip(h1, h2):
        second = _floored(m2)
        floored.append(second if second[1] or not _floored(m1)[1] else _floored(m1))
    laplace = [np.linalg.inv(m) for m, _ in floored]

    # 3. two rounds of Student-t draws, about the best start (Laplace) then at the first round's weighted
    # moments; every draw weighted against the even mixture of both proposals
    half = options.posterior_samples // 2
    first = [_student(r, half, c, cov) for r, c, cov in zip(rngs, centre, laplace)]
    points = np.stack([p for p, _ in first])
    log_p1, merit1 = on_device(_densities, stacked, points, cubes, model, free, eval_chunk, per_lens=half)
    second = [_student(r, half, *_moments(p, lp - q.logpdf(p), cov))
              for r, (p, q), lp, cov in zip(rngs, first, log_p1, laplace)]
    points2 = np.stack([p for p, _ in second])
    log_p2, merit2 = on_device(_densities, stacked, points2, cubes, model, free, eval_chunk, per_lens=half)
    points = np.concatenate([points, points2], axis=1)
    sample_log_p, sample_merit = np.concatenate([log_p1, log_p2], axis=1), np.concatenate([merit1, merit2], axis=1)
    log_q = np.stack([np.logaddexp(q1.logpdf(p), q2.logpdf(p)) - np.log(2)
                      for p, (_, q1), (_, q2) in zip(points, first, second)])
    evaluations += 2 * half
    samples = np.asarray(_to_physical(points, cubes, free))
    at_starts = np.asarray(_to_physical(z, cubes, free))

    results = []
    for slot, dataset_id in enumerate(dataset_ids):
        results.append(_lens_result(
            dataset_id, lens_priors[slot].names, z[slot], at_starts[slot], log_p[slot], merit[slot], best[slot],
            floored[slot][0], floored[slot][1], grad[slot], samples[slot], sample_log_p[slot] - log_q[slot],
            sample_merit[slot], int(evaluations[slot]), options.mode_tolerance, exchangeable_sets(lens_priors[slot])))
    # each lens's share: of the compiled calls by its evaluations, of the host's work (Laplace, proposals, PSIS) evenly
    host_s = time.perf_counter() - start - device_s[0]
    share = evaluations[:n_lenses] / evaluations.sum()
    results = [replace(r, likelihood_seconds=float(device_s[0] * w), sampler_seconds=host_s / n_lenses)
               for r, w in zip(results, share)]
    progress.converged += sum(r.converged for r in results)
    progress.stopped += sum(not r.converged for r in results)
    progress.finished_evaluations += int(evaluations[:n_lenses].sum())
    if with_fit:
        results = _attach_fits(stacked, model, results, np.stack([p.median() for p in lens_priors]), imagings)
    wall = time.perf_counter() - start
    return BlockSearch(results, [int(e) for e in evaluations[:n_lenses]], int(evaluations.sum()),
                       5 + screens, [wall] * n_lenses, device_s[0], 0.0, [])


def exchangeable_sets(prior: PriorTransform) -> list[np.ndarray]:
    """Per MGE of several sets whose ell_comps are all free with one prior: the (sets, 2) indices of those
    ell_comps among the free parameters (the z coordinates a search moves), set by set."""
    position = {prior.names[i]: k for k, i in enumerate(prior.free)}
    by_name = dict(zip(prior.names, prior.priors))
    groups = []
    for prefix in ("lens.light.ell_comps", "source.ell_comps"):
        names = [f"{prefix}.{i}" for i in range(sum(n.startswith(prefix + ".") for n in prior.names))]
        if len(names) > 2 and all(n in position for n in names) and len({by_name[n] for n in names}) == 1:
            groups.append(np.array([position[n] for n in names]).reshape(-1, 2))
    return groups


def aligned(z: np.ndarray, target: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """z (S, d) with, in each exchangeable group, its sets permuted to match `target`'s (d,) sets: the assignment
    of least summed squared distance (scipy's linear_sum_assignment)."""
    out = z.copy()
    for sets in groups:
        for j in range(len(z)):
            cost = ((z[j][sets][:, None, :] - target[sets][None, :, :]) ** 2).sum(-1)  # (own set, target set)
            own, theirs = optimize.linear_sum_assignment(cost)
            out[j][sets[theirs]] = z[j][sets[own]]
    return out


def _lens_result(dataset_id, names, z, at_starts, log_p, merit, best, m, definite, grad, samples, log_ratio,
                 sample_merit, evaluations, tolerance, groups=()) -> LensSearch:
    """One lens's LensSearch from the three phases' numbers (module docstring): starts z (S, d) at parameters
    at_starts (S, n) with log p and F; the best start's index, H, whether H was definite and its gradient; the
    draws' parameters (N, n), log p − log q and F; `groups`: its exchangeable_sets."""
    ok = np.isfinite(log_ratio) & (sample_merit > DEGENERATE_FIGURE_OF_MERIT)
    log_weight = np.full(len(log_ratio), -np.inf)
    pareto_k = np.inf
    if ok.sum() >= 5:
        smoothed, pareto_k = psis_weights(jnp.asarray(log_ratio[ok]))
        log_weight[ok] = np.asarray(smoothed)
    weight = np.exp(log_weight)
    n_eff = float(weight.sum() ** 2 / np.sum(weight**2)) if ok.sum() >= 5 else 0.0
    covariance = np.linalg.inv(m)
    if ok.sum() >= 5:
        log_evidence = float(special.logsumexp(log_ratio[ok]) - np.log(len(log_ratio)))
    else:  # the Laplace estimate
        log_evidence = float(log_p[best] + 0.5 * len(z[best]) * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(m)[1])
    offset = aligned(z, z[best], list(groups)) - z[best]
    distance = np.sqrt(np.einsum("si,ij,sj->s", offset, m, offset))
    at_best = distance <= SAME_MODE
    rival = (log_p >= log_p[best] - tolerance) & ~at_best
    multimodal = bool(rival.any() or (len(z) > 1 and at_best.sum() == 1))
    q16, q50, q84 = weighted_quantiles(samples, weight, (0.16, 0.5, 0.84))
    candidates = np.concatenate([merit, sample_merit])
    where = int(np.argmax(candidates))
    best_x = np.concatenate([at_starts, samples])[where]
    decrement = 0.5 * float(grad @ covariance @ grad)
    return LensSearch(
        dataset_id=dataset_id, parameter_names=names, samples=samples, log_weight=log_weight,
        log_likelihood=sample_merit, log_evidence=log_evidence,
        log_evidence_error=float(1.0 / np.sqrt(n_eff)) if n_eff > 0 else float("inf"), effective_samples=n_eff,
        likelihood_evaluations=evaluations, converged=bool(definite and decrement < 0.1),
        parameter_max_likelihood=best_x, max_log_likelihood=float(candidates[where]),
        parameter_median=q50, parameter_sigma=0.5 * (q84 - q16),
        diagnostics={"multimodal": int(multimodal), "starts_at_best": int(at_best.sum()),
                     "pareto_k": float(pareto_k)},
    )
