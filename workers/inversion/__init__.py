"""The numerical engine: PyAutoLens-exact linear inversions in JAX (numpy + jax + jaxnnls only).

Modules holding JAX code import `jax_setup` first (x64 on). `model` and `settings` are plain Python, so the
driver may import them without pulling in JAX.
"""
