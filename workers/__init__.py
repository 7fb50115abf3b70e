"""What runs inside a worker process: the engine (inversion/), config, priors, search, the Ray actor.

OpenBLAS (scipy's, which jaxlib's CPU LAPACK kernels use) is kept to one thread unless the user says otherwise:
its threads busy-wait on shared cores, which made a 400×400 Cholesky ~17× slower on a loaded 2-core machine.
It must be set before scipy is first imported, hence here, at the top of the package.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
