r"""The fused RAdam step: every parameter of a (device, dtype) group updated by ONE Triton kernel launch.

Why a fused step
----------------
An RAdam step reads the parameter :math:`\theta`, the gradient :math:`g` and the two moments :math:`m, v`, and writes
:math:`\theta, m, v`: 28 bytes per float32 parameter, and almost no arithmetic. Its speed limit is therefore memory
bandwidth, and the best possible step time is

.. math:: T_{\min} = \frac{28\ \text{bytes} \times N_{\text{params}}}{\text{copy bandwidth}}.

``torch.optim.RAdam`` misses this floor in two ways. Its for-loop path launches about fifteen small kernels per
tensor, and each kernel makes a full pass over memory (``m / bc1``, ``sqrt(v)``, ``+ eps``, products, ...); its
foreach path groups the launches over tensors but still makes a pass over memory per operation. A model with
thousands of small tensors is dominated by launch overhead, a model with large tensors by the extra passes.
This module does the whole step in one pass and one launch.

How the kernel works
--------------------
The kernel (``radam.fused.kernel.radam_step_kernel``) is a *multi-tensor* kernel, like apex's and torch's fused
Adam: one launch updates a whole list of tensors of different sizes.

1. **A plan on the device.** The host writes, once, an int64 tensor holding a *pointer table* (the addresses of every
   parameter, gradient, ``exp_avg``, ``exp_avg_sq``, step count, and ``max_exp_avg_sq`` under amsgrad), the number of
   elements of each tensor, and a *block table*: block ``b`` is chunk ``c_b`` (elements ``c_b * BLOCK`` to
   ``(c_b + 1) * BLOCK - 1``) of tensor ``i_b``. A tensor of ``n`` elements has
   :math:`\lceil n / \text{BLOCK} \rceil` blocks, so a list of any shapes becomes one flat list of equal blocks.
2. **A grid-stride loop.** The launch runs ``P`` programs (a few per multiprocessor, ``PROGRAMS_PER_SM``);
   program ``p`` updates blocks ``p, p + P, p + 2P, ...``, so every multiprocessor stays busy whatever the shapes.
3. **One pass over memory per block.** The program looks up the block's tensor and chunk, loads the chunk of
   :math:`\theta, g, m, v` (16-byte accesses where the addresses allow; the body is compiled twice, without a mask
   for full blocks and with one for the last block of a tensor, because a mask that may cut between any two
   elements rules out wide accesses), and while those loads are in flight reads
   the tensor's step count :math:`t-1` and computes, in float64, :math:`\beta_1^t, \beta_2^t` (binary
   exponentiation), the bias corrections, :math:`\rho_t` and the rectifier :math:`r_t`: a few hundred scalar
   operations against 28 KiB of memory traffic. It then applies the update below in registers and stores
   :math:`\theta, m, v` (and :math:`v^{\max}`). Because the step count and the learning rate (when it is a tensor)
   are read on the device, the step never synchronises with the host and can be captured in a CUDA graph.
4. **The step counts.** Every block of tensor :math:`i` needs the *old* count, so no program may increment it
   while others could still read it. Each program, when done, adds one to a counter with an atomic operation; the
   program that sees it was last increments every step count and resets the counter to zero for the next launch.

The update, per element, with :math:`\hat m_t = m_t / (1 - \beta_1^t)` (the arithmetic and its order are those of
``torch.optim.RAdam``'s single-tensor path, so the two agree to rounding):

.. math::
   g_t &= \pm \nabla_\theta f \;(+\, \lambda \theta_{t-1} \text{ for L2 decay}), \qquad
   \theta' = \theta_{t-1} (1 - \gamma \lambda) \text{ (decoupled decay, on steps that update)} \\
   m_t &= m_{t-1} + (1-\beta_1)(g_t - m_{t-1}), \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
   \theta_t &= \begin{cases}
     \theta' - \gamma\, r_t\, \hat m_t\, \dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon}
       & \rho_t > \text{threshold} \text{ (with } \max(v^{\max}_{t-1}, v_t) \text{ for amsgrad)} \\
     \theta' - \gamma\, \hat m_t & \text{otherwise, degenerate = "sgd"} \\
     \theta_{t-1} & \text{otherwise, degenerate = "skip"}
   \end{cases}

with :math:`\rho_\infty = 2/(1-\beta_2) - 1`, :math:`\rho_t = \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t)`, and
:math:`r_t` either the paper's

.. math:: r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}}

or the exact :math:`r_t = \sqrt{\mathrm{Var}[\psi](\rho_\infty) / \mathrm{Var}[\psi](\rho_t)}` of
:func:`radam.theory.r_t_exact`. The numerator depends on :math:`\beta_2` alone and comes from the host
(:func:`radam.theory.variance_psi_exact`); the denominator changes every step and is computed in the kernel. It
needs :math:`\log\Gamma`, which a GPU kernel does not have in float64 and Triton's interpreter does not have at all,
so the kernel uses only :math:`+,-,\times,/`:

.. math::
   \mathrm{Var}[\psi](\rho) = \frac{\rho}{\rho - 2}\,\bigl(1 - q(x)\bigr), \quad x = \frac{\rho}{2}, \quad
   q(x) = (x-1)\frac{\Gamma(x-\frac12)^2}{\Gamma(x)^2} = \underbrace{\frac{(x-1) P^2}{y-1}}_{F}\; q(y), \quad
   P = \prod_{k=0}^{s-1} \frac{x+k}{x+k-\frac12}, \quad y = x + s \ge 10,

where the product comes from :math:`\Gamma(z+1) = z\,\Gamma(z)`, and
:math:`\log q(y) = \log(1 - 1/y) + 2 \log\bigl(\sqrt{y}\,\Gamma(y-\frac12)/\Gamma(y)\bigr)` is a power series in
:math:`1/y` (:func:`radam.fused.log_q_series`), so that
:math:`1 - q(x) = (1 - F) - F\,\mathrm{expm1}(\log q(y))` keeps full
precision even where :math:`q` is within :math:`10^{-6}` of 1 (:math:`F = 1` exactly when no shift is needed).

Precision. The scalars are computed in float64 and rounded to the arithmetic's dtype, as torch rounds its
Python-float scalars. The element-wise arithmetic runs in float32 (float64 for float64 parameters) and rounds where
torch's kernels round: a fused multiply-add exactly where they use one (``lerp``, ``addcmul``, ``add`` with
``alpha``), IEEE division and square root, :math:`\epsilon`-denominator inverted then multiplied (torch's
``scalar / tensor``); the compiler's own contraction of multiply-adds is switched off. The fused step therefore
agrees with the single-tensor path to a unit in the last place, element by element. Half-precision parameters
(float16, bfloat16) are read, updated in float32 against float32 state, and rounded once (to nearest even) when
stored. Complex parameters are updated as pairs of reals, as torch does.

Host overhead
-------------
Building the plan costs several Python calls per tensor, which would dominate a step over thousands of small
tensors, so plans are kept, and with them every argument of the launch that does not change between steps (the
kernel, the grid, the constant arguments; :class:`Tuning` says how the step is cut and launched). ``radam.RAdam``
keeps one plan per fused param group (:mod:`radam.fused.group_step`): a later step reads the gradients once and,
when they are the tensors of the last step, nothing else per tensor; every storage the plan points at is watched, so
that a tensor given new memory rebuilds it. The functional :func:`fused_radam` keeps a few plans per list of tensors
(:class:`PlanCache`) and re-uses one when every tensor still has the address, size and layout it was built for,
rewriting only its gradient row when autograd has re-allocated the gradients. A plan that a CUDA graph has
recorded is kept for the life of the process and never rewritten, because the graph reads it.

The files
---------
``tuning`` (how a step is cut and launched), ``checks`` (Triton, devices, dtypes, layouts), ``series`` (the
coefficients of the exact rectifier's series), ``plan`` (the device tables of a launch), ``cache`` (the plans kept
between calls, and those a CUDA graph recorded), ``launch`` (a plan's launch; :func:`fused_radam`), ``group_step``
(a fused param group's lists and plan, re-used from step to step), ``optimizer_groups`` (what ``radam.RAdam``
delegates its fused groups to) and ``kernel`` (the Triton kernel, the only file that imports Triton).

Testing without a GPU
---------------------
With the environment variable ``TRITON_INTERPRET=1``, :func:`fused_radam` accepts CPU tensors and runs the same
kernel in Triton's interpreter (numpy), with the same pointer table and block table; this is how the kernel's logic
is tested on a CPU. Triton itself is imported only when a fused step is first taken.
"""

from __future__ import annotations

from radam.fused.cache import PlanCache
from radam.fused.checks import check_fused_supported, interpreter_enabled
from radam.fused.launch import check_lr, fused_radam, launch_plan
from radam.fused.optimizer_groups import cached_plan
from radam.fused.plan import build_plan, point_at_gradients
from radam.fused.series import log_q_series
from radam.fused.tuning import BLOCK_SIZE, DEFAULT_TUNING, NUM_WARPS, PROGRAMS_PER_SM, STEP_BLOCK, Tuning

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_TUNING",
    "NUM_WARPS",
    "PROGRAMS_PER_SM",
    "PlanCache",
    "STEP_BLOCK",
    "Tuning",
    "build_plan",
    "cached_plan",
    "check_fused_supported",
    "check_lr",
    "fused_radam",
    "interpreter_enabled",
    "launch_plan",
    "log_q_series",
    "point_at_gradients",
]
