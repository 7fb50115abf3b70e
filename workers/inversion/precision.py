"""The mixed-precision policy, in one place.

With `use_mixed_precision` off everything is fp64 (x64 is switched on when the engine is imported).
With it on, only these steps drop to single precision; everything else — ray tracing, light-profile
evaluation, the solves, the log-determinants and F's downstream use — stays fp64:

- MGE (linear light) columns: the column convolution runs in float32/complex64 end to end (scatter to the
  canvas, forward FFT, kernel multiply, inverse FFT, read back); the blurred columns are upcast to fp64
  before D and F are formed.
- Pixelization: the mapping matrix and its forward FFT in float32/complex64; the kernel multiply upcasts to
  complex128 so the inverse FFT and everything downstream are fp64.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import jax_setup  # noqa: F401
import jax.numpy as jnp


@dataclass(frozen=True)
class ConvolutionPrecision:
    """Dtypes of one column convolution: the columns on the canvas, their forward FFT, the kernel multiply
    (and everything after it)."""

    columns: type
    forward_fft: type
    multiply: type


@dataclass(frozen=True)
class Precision:
    """The policy: one ConvolutionPrecision for linear-light (MGE) columns, one for mapping matrices."""

    linear_light: ConvolutionPrecision
    mapping_matrix: ConvolutionPrecision


_FP64 = ConvolutionPrecision(jnp.float64, jnp.complex128, jnp.complex128)
FP64 = Precision(linear_light=_FP64, mapping_matrix=_FP64)
MIXED = Precision(
    linear_light=ConvolutionPrecision(jnp.float32, jnp.complex64, jnp.complex64),
    mapping_matrix=ConvolutionPrecision(jnp.float32, jnp.complex64, jnp.complex128),
)


def precision_for(use_mixed_precision: bool) -> Precision:
    """The precision policy for a Settings.use_mixed_precision value."""
    return MIXED if use_mixed_precision else FP64
