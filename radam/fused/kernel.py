"""The Triton kernel of the fused RAdam step (imported by :mod:`radam.fused` on first use, never at package import).

How the kernel works is explained in :mod:`radam.fused`; this file holds only the kernel, so that the package's other
modules never need Triton. The host side builds one int64 *plan* tensor per launch:

=============================  ==========================================================================
``plan[r * n_tensors + i]``    row ``r`` of the pointer table: the address of tensor ``i`` of list ``r``
                               (rows :data:`PARAM`, :data:`GRAD`, :data:`EXP_AVG`, :data:`EXP_AVG_SQ`,
                               :data:`STEP`, and :data:`MAX_EXP_AVG_SQ` when amsgrad)
``plan[N_ROWS * n + i]``       the number of elements of tensor ``i``
``plan[(N_ROWS+1) * n + b]``   the tensor that block ``b`` belongs to
``plan[(N_ROWS+1) * n + B + b]``  which chunk of ``BLOCK`` elements of that tensor block ``b`` is
=============================  ==========================================================================

where ``N_ROWS`` is :data:`N_ROWS_AMSGRAD` or :data:`N_ROWS_PLAIN`, ``n`` the number of tensors and ``B`` the
number of blocks. A launch has ``P <= B`` programs; program ``p`` updates blocks ``p, p + P, p + 2P, ...``.
"""

import triton
import triton.language as tl

from radam.fused import series

# Rows of the pointer table (constexpr: a Triton kernel reads only constexpr globals).
PARAM, GRAD, EXP_AVG, EXP_AVG_SQ, STEP, MAX_EXP_AVG_SQ = (tl.constexpr(row) for row in range(6))
N_ROWS_PLAIN = 5
N_ROWS_AMSGRAD = 6
# The constants of the exact rectifier's recipe (radam.fused.series, which says what each is)
N_SERIES = tl.constexpr(series.N_SERIES)
SERIES_FROM = tl.constexpr(series.SERIES_FROM)
EXPM1_TERMS = tl.constexpr(series.EXPM1_TERMS)


def radam_step_kernel(
    plan,  # int64 plan tensor, laid out as in the module docstring
    n_tensors,
    n_blocks,
    counter,  # int32[1], zero between launches: counts finished programs to find the last one
    series,  # float64[N_SERIES]: coefficients d_1..d_N of log q(y) = sum_n d_n y^-n
    lr: tl.float64,
    lr_ptr,  # a 1-element tensor holding lr when LR_IS_TENSOR (otherwise any tensor, unused)
    beta1: tl.float64,
    beta2: tl.float64,
    eps: tl.float64,
    weight_decay: tl.float64,
    threshold: tl.float64,
    variance_inf: tl.float64,  # the exact Var[psi] at rho_inf, for the exact rectifier (unused otherwise)
    PARAM_DTYPE: tl.constexpr,  # dtype of params and grads
    STATE_DTYPE: tl.constexpr,  # dtype of exp_avg, exp_avg_sq, max_exp_avg_sq: the arithmetic's dtype
    STEP_DTYPE: tl.constexpr,
    N_ROWS: tl.constexpr,
    AMSGRAD: tl.constexpr,
    MAXIMIZE: tl.constexpr,
    WEIGHT_DECAY: tl.constexpr,  # weight_decay != 0
    DECOUPLED: tl.constexpr,
    DEGENERATE_SGD: tl.constexpr,  # False: "skip"
    EXACT: tl.constexpr,  # rectifier "exact" (else "paper")
    LR_IS_TENSOR: tl.constexpr,
    ALIGNED: tl.constexpr,  # every address is a multiple of 16 bytes: lets the compiler use 16-byte accesses
    BLOCK: tl.constexpr,
    STEP_BLOCK: tl.constexpr,
):
    # Float arguments arrive as float64 scalars on the GPU and as Python floats in the interpreter: unify.
    one = tl.full([], 1.0, tl.float64)
    lr = tl.full([], lr, tl.float64)
    if LR_IS_TENSOR:
        lr = tl.load(lr_ptr).to(tl.float64)
    beta1 = tl.full([], beta1, tl.float64)
    beta2 = tl.full([], beta2, tl.float64)
    eps = tl.full([], eps, tl.float64)
    weight_decay = tl.full([], weight_decay, tl.float64)
    threshold = tl.full([], threshold, tl.float64)
    variance_inf = tl.full([], variance_inf, tl.float64)
    rho_inf = 2.0 / (one - beta2) - one
    # The scalars of the element-wise arithmetic that do not depend on t, rounded to its dtype as torch does.
    lr_c = lr.to(STATE_DTYPE)
    eps_c = eps.to(STATE_DTYPE)
    weight_decay_c = weight_decay.to(STATE_DTYPE)
    lerp_weight = (one - beta1).to(STATE_DTYPE)
    beta2_c = beta2.to(STATE_DTYPE)
    one_minus_beta2_c = (one - beta2).to(STATE_DTYPE)

    # A grid-stride loop: program p updates blocks p, p + P, p + 2P, ... of the block table (P programs).
    block_base = plan + (N_ROWS + 1) * n_tensors
    for block in range(tl.program_id(0), n_blocks, tl.num_programs(0)):
        # ---- 1. Which tensor and which chunk of it this block is, and where that tensor's lists live. ----
        tensor = tl.load(block_base + block).to(tl.int64)
        chunk = tl.load(block_base + n_blocks + block)
        numel = tl.load(plan + N_ROWS * n_tensors + tensor)
        param_addr = tl.load(plan + PARAM * n_tensors + tensor)
        grad_addr = tl.load(plan + GRAD * n_tensors + tensor)
        exp_avg_addr = tl.load(plan + EXP_AVG * n_tensors + tensor)
        exp_avg_sq_addr = tl.load(plan + EXP_AVG_SQ * n_tensors + tensor)
        step_addr = tl.load(plan + STEP * n_tensors + tensor)
        param_ptr = param_addr.to(tl.pointer_type(PARAM_DTYPE))
        grad_ptr = grad_addr.to(tl.pointer_type(PARAM_DTYPE))
        exp_avg_ptr = exp_avg_addr.to(tl.pointer_type(STATE_DTYPE))
        exp_avg_sq_ptr = exp_avg_sq_addr.to(tl.pointer_type(STATE_DTYPE))
        if ALIGNED:
            param_ptr = tl.multiple_of(param_ptr, 16)
            grad_ptr = tl.multiple_of(grad_ptr, 16)
            exp_avg_ptr = tl.multiple_of(exp_avg_ptr, 16)
            exp_avg_sq_ptr = tl.multiple_of(exp_avg_sq_ptr, 16)

        # The body below is compiled twice: without a mask, for the full blocks (the compiler may then use 16-byte
        # accesses, which a mask that can cut anywhere forbids), and with one for the last, partial block of a
        # tensor. Each block runs the copy that fits it.
        partial = (chunk + 1) * BLOCK > numel
        for MASKED in tl.static_range(2):
            if partial == (MASKED == 1):
                # ---- 2. Load the chunk first, so that memory works while the scalars are computed. ----
                offsets = chunk.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
                if MASKED:
                    mask = offsets < numel
                else:
                    mask = None
                param = tl.load(param_ptr + offsets, mask=mask).to(STATE_DTYPE)
                grad = tl.load(grad_ptr + offsets, mask=mask).to(STATE_DTYPE)
                exp_avg = tl.load(exp_avg_ptr + offsets, mask=mask)
                exp_avg_sq = tl.load(exp_avg_sq_ptr + offsets, mask=mask)
                if AMSGRAD:
                    max_addr = tl.load(plan + MAX_EXP_AVG_SQ * n_tensors + tensor)
                    max_ptr = max_addr.to(tl.pointer_type(STATE_DTYPE))
                    if ALIGNED:
                        max_ptr = tl.multiple_of(max_ptr, 16)
                    max_exp_avg_sq = tl.load(max_ptr + offsets, mask=mask)

                # ---- 3. The step's scalars, in float64, from the tensor's step count (same for all its blocks) ----
                # t is the step being taken; the count itself is written in 5.
                t = tl.load(step_addr.to(tl.pointer_type(STEP_DTYPE))).to(tl.float64) + one
                # beta1**t and beta2**t by binary exponentiation: only multiplications, no exp/log.
                beta1_t = one
                beta2_t = one
                base1 = beta1
                base2 = beta2
                e = t.to(tl.int64)
                while e > 0:
                    odd = (e % 2) == 1
                    beta1_t = tl.where(odd, beta1_t * base1, beta1_t)
                    beta2_t = tl.where(odd, beta2_t * base2, beta2_t)
                    base1 = base1 * base1
                    base2 = base2 * base2
                    e = e // 2
                bias_correction1 = one - beta1_t
                bias_correction2 = one - beta2_t
                rho_t = rho_inf - 2.0 * t * beta2_t / bias_correction2
                adaptive = rho_t > threshold
                rect = one  # the rectifier multiplies adaptive steps only, and is computed only for them
                if adaptive:
                    if EXACT:
                        # r_t = sqrt(Var[psi](rho_inf) / Var[psi](rho_t)),
                        # Var[psi](rho) = rho/(rho-2) (1 - q(x)), x = rho/2.
                        x = rho_t * 0.5
                        # Shift x up to y >= SERIES_FROM with Gamma(z+1) = z Gamma(z):
                        # Gamma(x-1/2)/Gamma(x) = Gamma(y-1/2)/Gamma(y) * P,  P = prod_k (x+k)/(x+k-1/2).
                        y = x
                        shift_product = one
                        while y < SERIES_FROM:
                            shift_product = shift_product * y / (y - 0.5)
                            y = y + 1.0
                        # log q(y) = log(1 - 1/y) + 2 log(Gamma(y-1/2) sqrt(y) / Gamma(y)), a power series in u = 1/y.
                        u = one / y
                        log_q_y = 0.0 * one
                        for k in tl.static_range(N_SERIES):  # Horner, from the highest coefficient down
                            log_q_y = (log_q_y + tl.load(series + (N_SERIES - 1 - k))) * u
                        # expm1(log q(y)) by Taylor's series, Horner again (|log q(y)| < 0.03: 8 terms reach 1e-19).
                        expm1_log_q_y = 0.0 * one
                        for k in tl.static_range(EXPM1_TERMS):
                            expm1_log_q_y = (expm1_log_q_y + 1.0) * log_q_y / (EXPM1_TERMS - k)
                        # q(x) = F q(y), F = (x-1) P^2 / (y-1): 1 - q(x) = (1 - F) - F expm1(log q(y)),
                        # with F = 1 exactly where no shift was needed.
                        f = (x - 1.0) * shift_product * shift_product / (y - 1.0)
                        variance_t = rho_t / (rho_t - 2.0) * ((one - f) - f * expm1_log_q_y)
                        rect = tl.sqrt(variance_inf / variance_t)
                    else:
                        rect = tl.sqrt(
                            (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
                        )
                # "skip" leaves the parameter alone (decay included) below the threshold
                updates = adaptive | DEGENERATE_SGD
                rect_c = rect.to(STATE_DTYPE)
                bias_correction1_c = bias_correction1.to(STATE_DTYPE)
                sqrt_bias_correction2_c = tl.sqrt(bias_correction2).to(STATE_DTYPE)
                decay_c = tl.where(updates, one - lr * weight_decay, one).to(STATE_DTYPE)

                # ---- 4. The update, in registers, and the stores. ----
                # Rounding follows torch's kernels: fused multiply-adds exactly where they use them (add with
                # alpha, lerp, addcmul), separate roundings elsewhere; the launch turns off the compiler's own
                # contraction of multiply-adds.
                if MAXIMIZE:
                    grad = -grad
                if WEIGHT_DECAY:
                    if DECOUPLED:
                        param = param * decay_c
                    else:
                        grad = tl.fma(param, weight_decay_c, grad)  # grad.add(param, alpha=weight_decay)
                # exp_avg.lerp_(grad, w), w = 1 - beta1, by torch's two-sided formula:
                # m + w (g - m) for w < 1/2, else g - (1 - w)(g - m).
                difference = grad - exp_avg
                exp_avg = tl.where(
                    lerp_weight < 0.5,
                    tl.fma(difference, lerp_weight, exp_avg),
                    tl.fma(difference, lerp_weight - 1.0, grad),
                )
                # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                exp_avg_sq = tl.fma(one_minus_beta2_c * grad, grad, exp_avg_sq * beta2_c)
                denominator_sq = exp_avg_sq
                if AMSGRAD:
                    max_exp_avg_sq = tl.maximum(max_exp_avg_sq, exp_avg_sq)
                    tl.store(max_ptr + offsets, max_exp_avg_sq, mask=mask)
                    denominator_sq = max_exp_avg_sq
                # IEEE division and square root (Triton's tl.sqrt is approximate in float32); torch divides a
                # scalar by a tensor as reciprocal-then-multiply, so the kernel does too.
                if STATE_DTYPE == tl.float32:
                    bias_corrected_exp_avg = tl.div_rn(exp_avg, bias_correction1_c)
                    adaptive_lr = tl.div_rn(1.0, tl.sqrt_rn(denominator_sq) + eps_c) * sqrt_bias_correction2_c
                else:
                    bias_corrected_exp_avg = exp_avg / bias_correction1_c
                    adaptive_lr = (1.0 / (tl.sqrt(denominator_sq) + eps_c)) * sqrt_bias_correction2_c
                step_size = bias_corrected_exp_avg * lr_c
                update = tl.where(adaptive, step_size * adaptive_lr * rect_c, step_size)
                param = tl.where(updates, param - update, param)
                if PARAM_DTYPE == tl.bfloat16:
                    # Round to nearest even by hand: the GPU's conversion does so, Triton's interpreter would truncate.
                    bits = param.to(tl.uint32, bitcast=True)
                    rounded = ((bits + (0x7FFF + ((bits >> 16) & 1))) >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
                    stored = tl.where(param == param, rounded, param.to(PARAM_DTYPE))  # NaN stays NaN
                else:
                    stored = param.to(PARAM_DTYPE)
                tl.store(param_ptr + offsets, stored, mask=mask)
                tl.store(exp_avg_ptr + offsets, exp_avg, mask=mask)
                tl.store(exp_avg_sq_ptr + offsets, exp_avg_sq, mask=mask)

    # ---- 5. The last program to finish advances every step count (all programs have read theirs by then). ----
    tl.debug_barrier()
    finished_before = tl.atomic_add(counter, 1)
    if finished_before == tl.num_programs(0) - 1:
        for start in range(0, n_tensors, STEP_BLOCK):
            index = start + tl.arange(0, STEP_BLOCK)
            valid = index < n_tensors
            steps_ptr = tl.load(plan + STEP * n_tensors + index, mask=valid, other=0).to(tl.pointer_type(STEP_DTYPE))
            tl.store(steps_ptr, tl.load(steps_ptr, mask=valid) + 1.0, mask=valid)
        tl.store(counter, 0)


def compiled_kernel():
    """The kernel compiled for the GPU by Triton's JIT (whatever ``TRITON_INTERPRET`` says)."""
    return triton.runtime.jit.JITFunction(radam_step_kernel)


def interpreted_kernel():
    """The kernel run by Triton's interpreter on CPU tensors (numpy), for testing without a GPU."""
    from triton.runtime.interpreter import InterpretedFunction

    return InterpretedFunction(radam_step_kernel)
