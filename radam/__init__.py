"""radam: Rectified Adam (Liu et al., ICLR 2020), its theory, and the book that explains it.

* :mod:`radam.theory` holds the paper's quantities (rho_t, the rectification term r_t, ...) as numpy functions.
* :mod:`radam.book` holds the helpers the book's notebooks share (setup, plotting style, glue).
"""

from radam import theory
from radam.optimizer import RAdam

__version__ = "0.1.0"

__all__ = ["theory", "__version__", "RAdam"]

# Adam-2k (the paper's ablation), warmup schedules for LambdaLR; radam.experiments is imported on demand.
from radam import schedules, variants  # noqa: E402
from radam.variants import Adam2k  # noqa: E402

__all__ += ["schedules", "variants", "Adam2k"]
