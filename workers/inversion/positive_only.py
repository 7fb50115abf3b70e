"""The positive-only solve: min ½sᵀAs − Dᵀs subject to s ≥ 0, exactly, by a certified active-set method.

Like PyAutoLens the problem is solved on the Jacobi-scaled system Q = J A J, q = J D, J = diag(A)^(−1/2),
s = J x, with the parameters flagged `fixed_zero` held at 0. Its solution is unique (Q is positive definite)
and is the x with, for the fixed set Z (x_Z = 0) and the free set F:

    Q_FF x_F = q_F,   x_F ≥ 0,   g_Z = (Q x − q)_Z ≥ 0           (the KKT conditions).

An active-set search finds Z, each pass one masked Cholesky solve (Q with Z's rows and columns replaced by the
identity, q zeroed on Z: a static shape for any Z):

- "lawson_hanson" (dense MGE systems, a few dozen strongly coupled amplitudes): Lawson & Hanson's NNLS, from
  x = 0 add the free parameter of largest −g, step back to feasibility whenever the free solve turns
  negative. Every pass lowers the objective, so it cannot cycle. Measured: 10-25 passes for 20 Gaussians.
- "block_pivoting" (meshes, hundreds of weakly coupled cells): Kim & Park's block principal pivoting, warm
  started from the unconstrained solve (Z = the negative cells); every infeasible index is exchanged at once,
  with Murty's single exchange as the backup rule after three passes without fewer infeasibilities. Measured:
  6-30 passes for a 20×20 mesh, against 70-260 for Lawson & Hanson; with 20 lens-light amplitudes beside the
  mesh often hundreds (the caller then starts with the crossover below, budget 1).

The search stops at a certified iterate: Q_FF x_F = q_F by construction, x_F > −τ·max|x| and
g_Z > −τ·max|q| with τ = CERTIFICATE_TOLERANCE (slightly negative free entries are then set to 0). Where it
does not certify within its pass budget (block pivoting can crawl on the strongly coupled lens-light amplitudes
of a lens-light + mesh system), jaxnnls's interior point (the solver this replaces) solves the system and block
pivoting restarts from the active set it points at, x_i < g_i (the crossover: measured, it certifies at once).
A lane the crossover does not certify either answers the interior point's own solution (the same to ~1e-6 of
its largest entry, with its ~1e-6 positive residue on cells that are exactly 0 here). Under vmap the search runs
every lane until the slowest certifies; the interior point runs only if some lane did not certify (a custom
batching rule, so a batched predicate does not turn it into a select that always pays for it).

Gradients: the searches run on stop_gradient copies and return the fixed set only; the solution is one more
masked solve outside them, so autodiff gives the exact derivative on the (locally constant) active set.
"""

from __future__ import annotations

import functools

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import jaxnnls

from .linear_algebra import hold_at_zero, solve_cholesky

NNLS_TARGET_KAPPA = 1e-11  # PyAutoLens's relaxation for finite gradients through the interior point
CERTIFICATE_TOLERANCE = 1e-10  # relative: primal to max|x|, dual to max|q|
METHODS = ("lawson_hanson", "block_pivoting")
_BACKUP_PASSES = 3  # block pivoting: passes allowed without fewer infeasibilities before single exchanges


def _masked_solve(q_matrix: jax.Array, q_vector: jax.Array, fixed: jax.Array) -> jax.Array:
    """x with x_F = Q_FF⁻¹ q_F and x_Z = 0 exactly (Z = fixed), at the full static size."""
    matrix, vector = hold_at_zero(q_matrix, q_vector, fixed)
    return jnp.where(fixed, 0.0, solve_cholesky(matrix, vector))


def _lawson_hanson(q_matrix, q_vector, permanent, budget):
    """(fixed set, certified) by Lawson & Hanson from x = 0; one masked solve per pass."""
    n = q_vector.shape[0]
    tol_g = CERTIFICATE_TOLERANCE * jnp.max(jnp.abs(q_vector))

    def add(state):  # x is the solution on `free`: certified, or free the best candidate
        free, x, passes, _ = state
        gain = jnp.where(free | permanent, -jnp.inf, q_vector - q_matrix @ x)
        done = gain.max() <= tol_g
        return free.at[jnp.argmax(gain)].set(free[jnp.argmax(gain)] | ~done), x, passes, done

    def body(state):
        free, x, passes, _ = state
        s = _masked_solve(q_matrix, q_vector, ~free)
        feasible = jnp.all(jnp.where(free, s > 0, True))
        # Step from x towards s until the first free entry reaches 0, and drop the entries at 0.
        blocking = free & (s <= 0)
        ratio = x / jnp.where(blocking, jnp.maximum(x - s, jnp.finfo(x.dtype).tiny), 1.0)
        alpha = jnp.clip(jnp.min(jnp.where(blocking, ratio, 1.0)), 0.0, 1.0)
        stepped = x + alpha * (s - x)
        kept = free & (stepped > 1e-14 * jnp.max(jnp.abs(stepped)))
        stepped = jnp.where(kept, stepped, 0.0)
        return jax.lax.cond(feasible, add, lambda st: st, (jnp.where(feasible, free, kept),
                                                            jnp.where(feasible, s, stepped), passes + 1, False))

    start = add((jnp.zeros(n, bool), jnp.zeros(n, q_vector.dtype), 0, False))
    free, _, passes, done = jax.lax.while_loop(lambda st: ~st[3] & (st[2] < budget), body, start)
    return ~free, done


def _block_pivoting(q_matrix, q_vector, permanent, budget, fixed=None):
    """(fixed set, certified) by block principal pivoting from `fixed` (default: the unconstrained solve's
    signs)."""
    n = q_vector.shape[0]
    tol_g = CERTIFICATE_TOLERANCE * jnp.max(jnp.abs(q_vector))

    def infeasible(fixed):
        x = _masked_solve(q_matrix, q_vector, fixed)
        g = q_matrix @ x - q_vector
        primal = ~fixed & (x < -CERTIFICATE_TOLERANCE * jnp.max(jnp.abs(x)))
        dual = fixed & ~permanent & (g < -tol_g)
        return primal | dual

    def body(state):
        fixed, bad, best, backup, passes = state
        count = bad.sum()
        fewer = count < best
        use_block = fewer | (backup > 0)
        last = n - 1 - jnp.argmax(bad[::-1])  # Murty: exchange the largest infeasible index only
        fixed = jnp.where(use_block, fixed ^ bad, fixed.at[last].set(~fixed[last]))
        backup = jnp.where(fewer, _BACKUP_PASSES, jnp.where(use_block, backup - 1, backup))
        return fixed, infeasible(fixed), jnp.minimum(best, count), backup, passes + 1

    passes = 1
    if fixed is None:
        fixed = permanent | (_masked_solve(q_matrix, q_vector, permanent) < 0)
        passes = 2
    start = (fixed, infeasible(fixed), n + 1, _BACKUP_PASSES, passes)
    fixed, bad, *_ = jax.lax.while_loop(lambda st: st[1].any() & (st[4] < budget), body, start)
    return fixed, ~bad.any()


def _interior_point(q_matrix: jax.Array, q_vector: jax.Array) -> jax.Array:
    """jaxnnls's primal-dual interior point on one system."""
    return jaxnnls.solve_nnls_primal(q_matrix, q_vector, NNLS_TARGET_KAPPA)


def _crossover(q_matrix, q_vector, permanent, budget):
    """(fixed set, certified, the interior point's x): jaxnnls's interior point, then block pivoting from
    the active set it points at, x_i < g_i = (Qx − q)_i (the primal below the dual)."""
    x = _interior_point(q_matrix, q_vector)
    fixed, certified = _block_pivoting(q_matrix, q_vector, permanent, budget, permanent | (x < q_matrix @ x - q_vector))
    return fixed, certified, x


@functools.cache
def _repair(budget: int):
    """(fixed, certified, x) ↦ the same where certified, else `_crossover`'s; the interior point runs only if
    some lane (of any leading batch dimensions) did not certify (a custom batching rule, so a batched
    predicate does not turn the cond into a select that always pays for it)."""

    @jax.custom_batching.custom_vmap
    def repair(fixed, certified, q_matrix, q_vector, permanent):
        n = q_vector.shape[-1]
        lanes = jax.vmap(lambda m, v, p: _crossover(m, v, p, budget))

        def cross():
            batch = certified.shape
            new = lanes(q_matrix.reshape(-1, n, n), q_vector.reshape(-1, n), permanent.reshape(-1, n))
            new_fixed, new_certified, x = (a.reshape(*batch, *a.shape[1:]) for a in new)
            keep = certified[..., None]
            return jnp.where(keep, fixed, new_fixed), certified | new_certified, jnp.where(keep, 0.0, x)

        return jax.lax.cond(jnp.all(certified), lambda: (fixed, certified, jnp.zeros_like(q_vector)), cross)

    @repair.def_vmap
    def _batched(axis_size, in_batched, *args):
        args = [a if batched else jnp.broadcast_to(a, (axis_size, *a.shape)) for a, batched in zip(args, in_batched)]
        return repair(*args), (True, True, True)  # one more leading dimension, one cond over all lanes

    return repair


def solve_positive_only(
    matrix: jax.Array, vector: jax.Array, fixed_zero: jax.Array, method: str, budget: int | None = None
) -> jax.Array:
    """argmin_{s ≥ 0, s[fixed_zero] = 0} ½sᵀAs − Dᵀs for symmetric positive-definite A (n, n), D (n,), by
    `method` ("lawson_hanson" or "block_pivoting", see the module docstring) within `budget` masked solves
    (default 3n for Lawson & Hanson, 30 for block pivoting), else by the interior point and its crossover
    (block pivoting, the same budget), else by the interior point alone."""
    if method not in METHODS:
        raise ValueError(f"unknown positive-only method {method!r}; expected one of {METHODS}")
    n = vector.shape[0]
    matrix, vector = hold_at_zero(matrix, vector, fixed_zero)
    scale = 1.0 / jnp.sqrt(jnp.diag(matrix))
    q_matrix = matrix * scale[:, None] * scale[None, :]
    q_vector = vector * scale
    search = _lawson_hanson if method == "lawson_hanson" else _block_pivoting
    budget = budget or (3 * n if method == "lawson_hanson" else 30)
    frozen = jax.lax.stop_gradient(q_matrix), jax.lax.stop_gradient(q_vector)
    fixed, certified = search(*frozen, fixed_zero, budget)
    fixed, certified, interior = _repair(budget)(fixed, certified, *frozen, jnp.asarray(fixed_zero))
    x = jnp.maximum(_masked_solve(q_matrix, q_vector, fixed | fixed_zero), 0.0)
    # A lane left uncertified answers the interior point's x, with the derivative of the masked solve on its
    # last fixed set (an approximation there).
    x = jnp.where(certified, x, x + jax.lax.stop_gradient(interior - x))
    return jnp.where(fixed_zero, 0.0, x * scale)
