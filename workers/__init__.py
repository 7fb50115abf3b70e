"""What runs inside a worker process: the engine (inversion/), the model description it shares with the driver
(model/), config, priors, searches, the block pipeline and the Ray actor."""
