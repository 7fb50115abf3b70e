"""PyAutoArray's adaptive rectangular meshes: an n×n mesh whose cells follow the density of the traced points
through a per-axis CDF transform (RectangularBilinearAdaptDensity: rank CDF; RectangularRTUAdaptDensity: kernel
CDF), as `InterpolatorRectangular` computes them under JAX.

The transform is built from the traced centres c_m of the real used pixels (M of them; padding never counts):
    μ = mean_m c_m,  σ = min over (y, x) of the population std of c_m,  p_m = (c_m − μ)/σ,
and applied per axis to the scaled traced sub-pixels u_q = (β_q − μ)/σ:
    rank:   F(u) = interp(u; sorted p, k/(M+1) for k = 1…M), 0 below the smallest p, 1 above the largest;
    kernel: F₀(u) = (1/M)·Σ_m Φ((u − p_m)/h),  h = KERNEL_BANDWIDTH·(max p − min p)/n,  Φ the normal CDF,
            F(u) = clip((F₀(u) − F₀(κ₀))/(F₀(κ_{K−1}) − F₀(κ₀)), 0, 1) over the knots
            κ_j = min p + j/(K−1)·(max p − min p), j < K = KERNEL_KNOTS.
The kernel CDF is F₀ itself, evaluated differently: PyAutoArray sums M normal CDFs at every one of the Q
sub-pixels, O(Q·M) (~3e8 erf for B0, seconds per fit on a CPU). F₀ is smooth on the scale h and only matters on
[min p, max p] (it is monotone, so u below or above the span clips to 0 or 1), so here the exact sum is taken at
the N + 1 Chebyshev points s_j = cos(πj/N) of that span, N = CHEBYSHEV_PER_BANDWIDTH·n/KERNEL_BANDWIDTH, and F₀
is interpolated between them (Chebyshev series, Clenshaw's recurrence): O(N·M + N·Q). Its difference from the
exact sum is at round-off, ≤ 1e-14 measured on the reference lenses (64 points: 1e-12), and the test suite checks
it against the exact sum.
Index space g = (n − 3)·F + 1 ∈ [1, n − 2] per axis; with a = clip(⌊g_y⌋, 0, n−2), c = clip(⌊g_x⌋, 0, n−2),
t_y = g_y − a, t_x = g_x − c, a sub-pixel maps to the four cells
    (row n−a−1, col c): t_y(1−t_x),  (n−a−1, c+1): t_y·t_x,  (n−a, c): (1−t_y)(1−t_x),  (n−a, c+1): (1−t_y)·t_x,
cell k = row·n + col. So row r and column c hold the node U = ((n−r−1)/(n−3), (c−1)/(n−3)) of the unit square:
as in PyAutoArray (its rows are flipped by row = n − i, not n − 1 − i), columns 0 and n−1 and rows 0 and 1 are
guard cells no point reaches, while the bottom row n−1 (U_y = 0) carries flux; with edge zeroing it is held
at 0 all the same. Cell centres (for pictures) are
those nodes mapped back to the source plane by the inverse transform (PyAutoArray's inverse interpolation:
sorted p against k/(M+1), or the knots against their normalised F), times σ, plus μ.

The *_adapt_image meshes (RectangularBilinearAdaptImage, RectangularRTUAdaptImage) weight the traced centres by
the mesh weight map w_m (mesh_weights: the adapt image clipped at 1e-12, raised to weight_power, floored at
weight_floor, normalised to sum 1 over the real pixels); μ, σ and the span stay unweighted:
    rank:   F(u) = interp(u; sorted p, W_k), W_k the cumulative w in sorted order, a run of tied p taking the
            run's last W (right-continuous), 0 below, 1 above; the inverse interpolates the nodes on (W_k, p);
    kernel: F₀(u) = Σ_m w_m·Φ((u − p_m)/h), the rest as above.
"""

from __future__ import annotations

from . import jax_setup  # noqa: F401
import jax
import jax.numpy as jnp
import numpy as np

KERNEL_BANDWIDTH = 1.0  # PyAutoArray's KERNEL_CDF_DEFAULT_BANDWIDTH, in mesh pixels
KERNEL_KNOTS = 64  # PyAutoArray's KERNEL_CDF_DEFAULT_KNOTS
CHEBYSHEV_PER_BANDWIDTH = 6  # Chebyshev points per kernel bandwidth h across the span (6 n/bandwidth in all)
_TINY = np.spacing(np.finfo(np.float64).eps)  # jnp.interp's zero-width-interval guard


def _interp(x: jax.Array, xp: jax.Array, fp: jax.Array, n: jax.Array, left, right) -> jax.Array:
    """jnp.interp(x, xp[:n], fp[:n], left, right) for a traced count n ≥ 2, xp ascending, xp[n:] ≥ xp[n−1]."""
    i = jnp.clip(jnp.searchsorted(xp, x, side="right"), 1, n - 1)
    x0, dx, f0 = xp[i - 1], xp[i] - xp[i - 1], fp[i - 1]
    flat = jnp.abs(dx) <= _TINY
    f = jnp.where(flat, f0, f0 + ((x - x0) / jnp.where(flat, 1.0, dx)) * (fp[i] - f0))
    f = jnp.where(x < xp[0], left, f)
    return jnp.where(x > xp[n - 1], right, f)


def _scaling(centres: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(μ (2,), σ (), M ()) of the real centres."""
    w = valid[:, None]
    count = jnp.sum(valid)
    mu = jnp.sum(jnp.where(w > 0, centres, 0.0), axis=0) / count
    var = jnp.sum(jnp.where(w > 0, (centres - mu) ** 2, 0.0), axis=0) / count
    return mu, jnp.min(jnp.sqrt(var)), count


def _node_weights(f: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """(cells (Q, 4) int32, weights (Q, 4)) of transformed points f (Q, 2) in [0, 1]² (module docstring)."""
    g = (n - 3) * f + 1.0
    a = jnp.clip(jnp.floor(g[:, 0]), 0, n - 2)
    c = jnp.clip(jnp.floor(g[:, 1]), 0, n - 2)
    ty, tx = g[:, 0] - a, g[:, 1] - c
    upper = (n - a.astype(jnp.int32) - 1) * n + c.astype(jnp.int32)
    lower = upper + n
    cells = jnp.stack([upper, upper + 1, lower, lower + 1], axis=1)
    weights = jnp.stack([ty * (1 - tx), ty * tx, (1 - ty) * (1 - tx), (1 - ty) * tx], axis=1)
    return cells, weights


def _node_positions(n: int) -> jax.Array:
    """(n, 2): the unit-square node of row r (column 0) and of column r (column 1)."""
    r = jnp.arange(n, dtype=jnp.float64)
    return jnp.stack([(n - r - 1) / (n - 3), (r - 1) / (n - 3)], axis=1)


def _centres_grid(nodes: jax.Array) -> jax.Array:
    """(n², 2) cell centres from per-row y (column 0) and per-column x (column 1) positions (n, 2)."""
    yy, xx = jnp.meshgrid(nodes[:, 0], nodes[:, 1], indexing="ij")
    return jnp.stack([yy.ravel(), xx.ravel()], axis=-1)


def mesh_weights(adapt_image: jax.Array, valid: jax.Array, power: float, floor: float) -> jax.Array:
    """(P,) PyAutoArray's mesh weight map of an adapt image: max(clip(a, 1e-12)^power, floor), normalised to
    sum 1 over the real pixels, 0 on padding (equal weights if every one underflows to 0)."""
    w = jnp.clip(adapt_image, 1e-12, None) ** power
    w = jnp.where(valid > 0, jnp.where(w < floor, floor, w), 0.0)
    total = jnp.sum(w)
    return jnp.where(total > 0, w / jnp.where(total > 0, total, 1.0), valid / jnp.sum(valid))


def rank_mapping(
    points: jax.Array, sub_weight: jax.Array, centres: jax.Array, valid: jax.Array, shape: tuple[int, int],
    weights: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """RectangularBilinearAdaptDensity, or with `weights` (mesh_weights) RectangularBilinearAdaptImage: (cells
    (Q, 4), bilinear weights (Q, 4), cell centres (n², 2)) of the traced sub-pixels `points` (Q, 2) on the mesh
    adapted to the traced centres (P, 2) flagged by `valid`."""
    n = shape[0]
    mu, sigma, count = _scaling(centres, valid)
    scaled = (centres - mu) / sigma
    top = jnp.max(jnp.where(valid[:, None] > 0, scaled, -jnp.inf), axis=0)
    keyed = jnp.where(valid[:, None] > 0, scaled, top)  # padding sorts last, at the top
    m = count.astype(jnp.int32)
    if weights is None:
        ordered = jnp.sort(keyed, axis=0)
        ranks = jnp.arange(1, ordered.shape[0] + 1, dtype=jnp.float64) / (count + 1.0)
        ranks = jnp.stack([ranks, ranks], axis=1)
    else:  # padding weighs 0, so a tie with the top point keeps its cumulative weight
        order = jnp.argsort(keyed, axis=0)
        ordered = jnp.take_along_axis(keyed, order, axis=0)
        cumulative = jnp.cumsum(weights[order], axis=0)
        last = [jnp.searchsorted(ordered[:, d], ordered[:, d], side="right") - 1 for d in range(2)]
        ranks = jnp.stack([cumulative[last[d], d] for d in range(2)], axis=1)
    u = (points - mu) / sigma
    f = jnp.stack([_interp(u[:, d], ordered[:, d], ranks[:, d], m, 0.0, 1.0) for d in range(2)], axis=1)
    nodes = _node_positions(n)
    back = jnp.stack(
        [_interp(nodes[:, d], ranks[:, d], ordered[:, d], m, ordered[0, d], ordered[m - 1, d]) for d in range(2)],
        axis=1,
    )
    cells, weights = _node_weights(f, n)
    return cells, weights, _centres_grid(back * sigma + mu)


def kernel_cdf(queries: jax.Array, points: jax.Array, weights: jax.Array, h: jax.Array) -> jax.Array:
    """(Q, 2): the exact F₀(u) = Σ_m w_m·Φ((u − p_m)/h) per axis at queries u (Q, 2), points p (M, 2)."""
    t = (queries[:, None, :] - points[None, :, :]) / h
    return jnp.sum(weights[None, :, None] * (0.5 * (1.0 + jax.scipy.special.erf(t / np.sqrt(2.0)))), axis=1)


def chebyshev_kernel_cdf(
    queries: jax.Array, points: jax.Array, weights: jax.Array, low: jax.Array, span: jax.Array, h: jax.Array, n: int
) -> tuple[jax.Array, jax.Array]:
    """(F₀ at the queries (Q, 2) clipped into [low, low + span], F₀ at (low, low + span) (2, 2)), F₀ the kernel
    CDF of `points` interpolated from its exact values at the Chebyshev points of the span (module docstring)."""
    order = int(np.ceil(CHEBYSHEV_PER_BANDWIDTH * n / KERNEL_BANDWIDTH))
    j = jnp.arange(order + 1)
    nodes = low + (jnp.cos(jnp.pi * j / order)[:, None] + 1.0) / 2.0 * span  # j = 0 at the top, j = N at low
    values = kernel_cdf(nodes, points, weights, h)
    halve = jnp.where((j == 0) | (j == order), 0.5, 1.0)[:, None]
    coefficients = halve * (2.0 / order) * (jnp.cos(jnp.pi * j[:, None] * j[None, :] / order) @ (halve * values))
    s = jnp.clip(2.0 * (queries - low) / span - 1.0, -1.0, 1.0)

    def clenshaw(carry, c):
        b1, b2 = carry
        return (c + 2.0 * s * b1 - b2, b1), None

    (b1, b2), _ = jax.lax.scan(clenshaw, (jnp.zeros_like(s), jnp.zeros_like(s)), coefficients[:0:-1])
    return coefficients[0] + s * b1 - b2, values[jnp.array([order, 0])]


def kernel_mapping(
    points: jax.Array, sub_weight: jax.Array, centres: jax.Array, valid: jax.Array, shape: tuple[int, int],
    weights: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """RectangularRTUAdaptDensity, or with `weights` RectangularRTUAdaptImage: as rank_mapping, with the kernel
    CDF (default bandwidth and knots)."""
    n = shape[0]
    mu, sigma, count = _scaling(centres, valid)
    scaled = (centres - mu) / sigma
    real = valid[:, None] > 0
    low = jnp.min(jnp.where(real, scaled, jnp.inf), axis=0)
    high = jnp.max(jnp.where(real, scaled, -jnp.inf), axis=0)
    span = high - low
    h = KERNEL_BANDWIDTH * span / n
    knots = low + jnp.linspace(0.0, 1.0, KERNEL_KNOTS)[:, None] * span
    u = (points - mu) / sigma
    weights = valid / count if weights is None else weights
    raw, (f_low, f_high) = chebyshev_kernel_cdf(jnp.concatenate([knots, u]), scaled, weights, low, span, h, n)
    f_all = (raw - f_low) / (f_high - f_low)
    f_knots, f = f_all[:KERNEL_KNOTS], jnp.clip(f_all[KERNEL_KNOTS:], 0.0, 1.0)
    nodes = _node_positions(n)
    back = jnp.stack([jnp.interp(nodes[:, d], f_knots[:, d], knots[:, d]) for d in range(2)], axis=1)
    cells, weights = _node_weights(f, n)
    return cells, weights, _centres_grid(back * sigma + mu)
