"""What the driver and the engine share, without JAX: the lens model's description and parameter layout
(description), the inversion Settings, pixel grids and masks (grids) and shape buckets (buckets).

numpy and the standard library only. The engine (workers/inversion) is keyed by these; the driver plans with
them and never imports the engine.
"""
