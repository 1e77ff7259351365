"""radam: Rectified Adam (Liu et al., ICLR 2020), its theory, and the book that explains it.

* :class:`radam.RAdam` is the optimizer: ``torch.optim.RAdam`` with default arguments, every variant as an option;
  :mod:`radam.functional` holds its step, :mod:`radam.fused` the Triton kernel (imported only when used).
* :class:`radam.Adam2k`, :class:`radam.AdamEps` and :mod:`radam.schedules` are the paper's ablations and the warmup
  schedules it is compared with.
* :mod:`radam.theory` holds the paper's quantities (rho_t, the rectification term r_t, the variance of psi, ...).
* :mod:`radam.experiments` (``python -m radam.experiments``) and :mod:`radam.bench` (``python -m radam.bench``) are the
  training comparisons and the step-time benchmarks; :mod:`radam.book` the helpers the notebooks share.
"""

from radam import (
    _torch_compat,  # noqa: F401  (first: names the torch version needed if this one is too old)
    schedules,
    theory,
    variants,
)
from radam.optimizer import RAdam
from radam.variants import Adam2k, AdamEps

__version__ = "0.1.0"

__all__ = ["RAdam", "Adam2k", "AdamEps", "schedules", "theory", "variants", "__version__"]
