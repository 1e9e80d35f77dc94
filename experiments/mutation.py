"""Mutation testing: plant one single-point bug at a time in a copy of this checkout and ask whether
the proof gate (`lpcheck verify`) and the tests catch it.

Each mutant in CATALOGUE names a file, the exact original text (which must occur exactly once in
that file, or the script stops: the catalogue cannot rot silently), its replacement, the gate
selection and the test files that cover it. For each mutant, in a copy of the tracked files (no git
worktree; one copy per job, the file restored after each mutant):
  (a) the gate: `python -m lpcheck verify --only SELECTION` in the copy (the copy's lpcheck and
      proofs). The whole gate fails whenever any obligation of a selection fails (every proof module
      is imported either way), so a catch by the selection is a catch by the whole gate: the gate's
      catch rate here is a lower bound of the whole gate's (`--full-gate` runs the whole gate for
      every mutant instead, ~2-3 min each on 2 cores); Each selection (the conformance obligations,
      or proof modules, over the changed code) is first run on the unmutated copy and must pass;
  (b) the tests: `python -m pytest -x` on the mutant's test files or nodes (a `-k` filter where a
      file is long; proof mutants use pytest's `--lpcheck` items), kept small so the run stays
      affordable.
A mutant is in scope when it lies in code the gate says it checks: proofs/ and lpcheck/formulas.py
(the claims and their proofs), or a function named in a conformance module's CODE_CHECKED
(proofs/conformance*.py).

Output: OUT/mutation.json (written after every mutant; --resume keeps the finished ones whose texts
are unchanged), OUT/mutation.md (the table and the totals), OUT/mutation.log (progress with ETA, as
printed).

    python experiments/mutation.py                          # the whole catalogue
    python experiments/mutation.py --only lp.rho_exponent,optim.ema_beta --out /tmp/m
    python experiments/mutation.py --resume --jobs 2
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))

CONF = "conf.*,control.conf.*"  # every conformance obligation and its controls


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    original: str
    replacement: str
    tests: tuple  # pytest arguments: test files (or node ids), relative to the checkout
    gate: str = CONF  # the --only selection of lpcheck verify
    what: str = ""
    # lpcheck verify --pack NAME for each (a pack's obligations; default: the paper's)
    packs: tuple = ()


M = Mutant
CATALOGUE = [
    # --- the paper's equations in code: lp.py, schedule.py, formulas.py
    # ---------------------------------------
    M(
        "lp.rho_exponent",
        "lpcheck/lp.py",
        "    return (p - 2) / (p - 1)\n",
        "    return (p - 1) / (p - 2)\n",
        tests=("tests/test_lp.py",),
        gate="conf.lp.*",
        what="eq. 20 inverted",
    ),
    M(
        "lp.rho_inf",
        "lpcheck/lp.py",
        "        return 1.0\n    return (p - 2) / (p - 1)",
        "        return 0.5\n    return (p - 2) / (p - 1)",
        tests=("tests/test_lp.py",),
        gate="conf.lp.*",
        what="rho(inf) = 1/2",
    ),
    M(
        "lp.dual_exponent",
        "lpcheck/lp.py",
        "    return p / (p - 1)\n",
        "    return (p - 1) / p\n",
        tests=("tests/test_lp.py",),
        gate="conf.lp.*",
        what="q = (p-1)/p",
    ),
    M(
        "lp.rescale_eps_outside",
        "lpcheck/lp.py",
        "    return g / (abs(g) + eps) ** r\n",
        "    return g / (abs(g) ** r + eps)\n",
        tests=("tests/test_lp.py",),
        gate="conf.lp.*",
        what="eps outside the power",
    ),
    M(
        "lp.steepest_inf_no_l1",
        "lpcheck/lp.py",
        "        magnitude = m * norm_ratio  # ||g||_1 on every coordinate",
        "        magnitude = m  # ||g||_1 on every coordinate",
        tests=("tests/test_lp.py",),
        gate="conf.lp.*",
        what="eq. 10 at p = inf: max|g|",
    ),
    M(
        "lp.steepest_global_power",
        "lpcheck/lp.py",
        "norm_ratio ** (2 - q), torch_mode)",
        "norm_ratio ** (q - 1), torch_mode)",
        tests=("tests/test_lp.py",),
        gate="conf.lp.*",
        what="eq. 10's global factor exponent",
    ),
    M(
        "lp.norm_inf",
        "lpcheck/lp.py",
        "    if p == math.inf:\n        return _amax(r, axis, torch_mode)",
        "    if p == math.inf:\n        return _sum(r, axis, torch_mode)",
        tests=("tests/test_lp.py",),
        gate="conf.lp.*",
        what="||x||_inf as sum",
    ),
    M(
        "schedule.cos_offset",
        "lpcheck/schedule.py",
        "w = math.cos(math.pi * done / (2 * (total_epochs - 1))) ** 2",
        "w = math.cos(math.pi * epoch / (2 * (total_epochs - 1))) ** 2",
        tests=("tests/test_schedule.py",),
        gate="conf.schedule.*",
        what="eq. 19 with s in place of s - 1 (first half)",
    ),
    M(
        "schedule.sin_half",
        "lpcheck/schedule.py",
        "w = math.sin(math.pi * left / (2 * (total_epochs - 1))) ** 2",
        "w = math.sin(math.pi * left / (2 * total_epochs)) ** 2",
        tests=("tests/test_schedule.py",),
        gate="conf.schedule.*",
        what="eq. 19's second half with S in place of S - 1",
    ),
    M(
        "formulas.eq21_exponent",
        "lpcheck/formulas.py",
        "    return g / (sp.Abs(g) + eps) ** eq20_rho(p)",
        "    return g / (sp.Abs(g) + eps) ** eq16_alpha(p)",
        tests=(
            "tests/test_formulas.py",
            "tests/test_proofs_coverage.py::"
            "test_the_unmutated_steps_hold_with_both_engines_on_the_same_statement",
            "tests/test_lp.py",
        ),
        gate="conf.lp.rescale,eq11.*",
        what="eq. 21 with 1/(p-1)",
    ),
    M(
        "formulas.eq31_factor",
        "lpcheck/formulas.py",
        "    return 2 * delta / (eta * c1 * T) + L * eta * c2 / c1",
        "    return delta / (eta * c1 * T) + L * eta * c2 / c1",
        tests=(
            "tests/test_formulas.py",
            "tests/test_proofs_coverage.py::"
            "test_the_unmutated_steps_hold_with_both_engines_on_the_same_statement",
            "tests/test_bounds.py",
        ),
        gate="conf.bounds,thm1.*",
        what="eq. 31 without its 2",
    ),
    M(
        "formulas.eq23_convention",
        "lpcheck/formulas.py",
        "    return beta * m_prev + (1 - beta) * g",
        "    return beta * m_prev + g",
        tests=(
            "tests/test_formulas.py",
            "tests/test_proofs_coverage.py::"
            "test_the_unmutated_steps_hold_with_both_engines_on_the_same_statement",
            "tests/test_optim.py",
        ),
        gate="conf.optim.lpsgdm,thm2.*",
        what="torch's momentum in eq. 23",
    ),
    M(
        "formulas.eq19_cos",
        "lpcheck/formulas.py",
        "(1 + sp.cos(sp.pi * (s - 1) / (S - 1))) / 2",
        "(1 + sp.cos(sp.pi * s / (S - 1))) / 2",
        tests=(
            "tests/test_formulas.py",
            "tests/test_proofs_coverage.py::"
            "test_the_unmutated_steps_hold_with_both_engines_on_the_same_statement",
            "tests/test_schedule.py",
        ),
        gate="conf.schedule.*,eq19.*",
        what="eq. 19 from epoch 0",
    ),
    # --- the optimizer: foreach and per-tensor paths, groups, state
    # -------------------------------------------
    M(
        "optim.ema_lerp_weight",
        "lpcheck/optim.py",
        "        torch._foreach_lerp_(bufs, grads, 1.0 - beta)",
        "        torch._foreach_lerp_(bufs, grads, beta)",
        tests=(
            "tests/test_optim.py",
            "-k",
            "foreach_matches_reference or first_lpsgdm or ema_keeps",
        ),
        gate="conf.optim.*",
        what="eq. 23 weight beta for 1-beta",
    ),
    M(
        "optim.ema_small_beta",
        "lpcheck/optim.py",
        "        torch._foreach_add_(bufs, grads, alpha=1.0 - beta)",
        "        torch._foreach_add_(bufs, grads, alpha=1.0)",
        tests=(
            "tests/test_optim.py",
            "-k",
            "foreach_matches_reference or first_lpsgdm or ema_keeps",
        ),
        gate="conf.optim.*",
        what="eq. 23 for beta < 1/2 without 1 - beta",
    ),
    M(
        "optim.decay_sign",
        "lpcheck/optim.py",
        "        torch._foreach_mul_(params, 1.0 - lr * weight_decay)",
        "        torch._foreach_mul_(params, 1.0 + lr * weight_decay)",
        tests=("tests/test_optim.py", "-k", "foreach_matches_reference or decoupled_decay"),
        gate="conf.optim.*",
        what="eq. 25 grows theta",
    ),
    M(
        "optim.factor_no_eps",
        "lpcheck/optim.py",
        "    torch._foreach_add_(ws, eps)\n    torch._foreach_log_(ws)",
        "    torch._foreach_add_(ws, 0.0)\n    torch._foreach_log_(ws)",
        tests=("tests/test_optim.py", "-k", "foreach_matches_reference or sign_descent"),
        gate="conf.optim.*",
        what="foreach rescale without eps",
    ),
    M(
        "optim.reference_decay_after",
        "lpcheck/optim.py",
        "            param.mul_(1.0 - lr * weight_decay)  # eq. 25",
        "            param.mul_(1.0 - weight_decay)  # eq. 25",
        tests=("tests/test_optim.py", "-k", "foreach_matches_reference or decoupled_decay"),
        gate="conf.optim.*",
        what="per-tensor path decays by lambda, not lr lambda",
    ),
    M(
        "optim.group_hyper_from_first",
        "lpcheck/optim.py",
        "                hypers.append(_hyper(group, self._with_momentum))",
        "                hypers.append(_hyper(self.param_groups[0], self._with_momentum))",
        tests=(
            "tests/test_optim.py",
            "-k",
            "per_group or foreach_matches_reference or own_hyperparameters",
        ),
        gate="conf.optim.*",
        what="every group steps with group 0's hyperparameters",
    ),
    M(
        "optim.set_epoch_off_by_one",
        "lpcheck/optim.py",
        '                    new.append(cosine_p(epoch, group["total_epochs"], group["p_max"]))',
        '                    new.append(cosine_p(max(1, epoch - 1), group["total_epochs"], '
        'group["p_max"]))',
        tests=("tests/test_optim.py", "-k", "per_group or foreach_matches_reference"),
        gate="conf.optim.*",
        what="set_epoch lags one epoch",
    ),
    M(
        "optim.rho_zero_skip",
        "lpcheck/optim.py",
        "            if h.rho == 0:\n                _apply_(params, direction, h.lr)",
        "            if h.rho < 0.5:\n                _apply_(params, direction, h.lr)",
        tests=("tests/test_optim.py", "-k", "foreach_matches_reference or sign_descent"),
        gate="conf.optim.*",
        what="the rescale skipped for rho < 1/2",
    ),
    M(
        "optim.resume_epoch",
        "lpcheck/optim.py",
        '        out["epoch"] = self.param_groups[0]["epoch"] if self.param_groups else 1',
        '        out["epoch"] = 1',
        tests=("tests/test_optim.py", "-k", "joins_the_current_epoch or resume"),
        gate="conf.optim.*",
        what="a new group starts at epoch 1",
    ),
    M(
        "optim.load_state_ignored",
        "lpcheck/optim.py",
        "            super().load_state_dict(state_dict)\n",
        "            pass\n",
        tests=("tests/test_optim.py", "-k", "resume or state_dict"),
        gate="conf.optim.*",
        what="load_state_dict checks, then loads nothing",
    ),
    M(
        "optim.buffer_init",
        "lpcheck/optim.py",
        'state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)',
        'state["momentum_buffer"] = p.grad.detach().clone()',
        tests=("tests/test_optim.py", "-k", "first_lpsgdm or foreach_matches_reference"),
        gate="conf.optim.*",
        what="m_{-1} = g_0 (torch's first step) instead of 0",
    ),
    # --- the fused CPU step and the Triton kernel
    # ------------------------------------------------------------
    M(
        "fused.lerp_weight",
        "lpcheck/fused.py",
        "        w = 1.0 - beta if self.bufs else 0.0",
        "        w = beta if self.bufs else 0.0",
        tests=("tests/test_fused.py", "-k", "float64_matches_reference"),
        gate="conf.optim.fused*",
        what="fused eq. 23 weight",
    ),
    M(
        "fused.decay",
        "lpcheck/fused.py",
        "        decay = 1.0 - lr * weight_decay\n",
        "        decay = 1.0 - weight_decay\n",
        tests=("tests/test_fused.py", "-k", "float64_matches_reference"),
        gate="conf.optim.fused*",
        what="fused eq. 25 without lr",
    ),
    M(
        "fused.exp2_coef",
        "lpcheck/fused.py",
        "    1.0,\n    0.6931471824645996,\n",
        "    1.0,\n    0.6931471824645996 * 1.001,\n",
        tests=("tests/test_fused.py", "-k", "polynomials_are_accurate or pow_neg_f32_is"),
        gate="conf.optim.fused*",
        what="2^r polynomial off 0.1 %",
    ),
    M(
        "fused.f64_power_sign",
        "lpcheck/fused.py",
        "    return torch.exp(neg_rho * torch.log(x))",
        "    return torch.exp(-neg_rho * torch.log(x))",
        tests=("tests/test_fused.py", "-k", "float64_matches_reference"),
        gate="conf.optim.fused*",
        what="float64 power +rho",
    ),
    M(
        "fused_triton.decay",
        "lpcheck/fused_triton.py",
        "        theta = _round(theta * decay, DTYPE).to(tl.float32)",
        "        theta = _round(theta * (decay * decay), DTYPE).to(tl.float32)",
        tests=("tests/test_fused_triton.py", "-k", "many_steps"),
        gate="conf.optim.fused_triton",
        what="kernel decays twice",
    ),
    M(
        "fused_triton.eps",
        "lpcheck/fused_triton.py",
        "        factor = _pow_neg(tl.abs(d) + eps, neg_rho)",
        "        factor = _pow_neg(tl.abs(d) + eps * 1e6, neg_rho)",
        tests=("tests/test_fused_triton.py", "-k", "many_steps"),
        gate="conf.optim.fused_triton",
        what="kernel eps x 1e6",
    ),
    # --- the method layer
    # ------------------------------------------------------------------------------------
    M(
        "methods.lpsgd_pow",
        "lpcheck/methods/lpsgd.py",
        "    torch._foreach_pow_(denom, rho)",
        "    torch._foreach_pow_(denom, 1.0 - rho)",
        tests=("tests/test_methods.py", "-k", "reference_step_for_step"),
        gate="conf.methods",
        what="method eq. 21 exponent 1 - rho",
    ),
    M(
        "methods.ema_small_beta",
        "lpcheck/methods/base.py",
        "    torch._foreach_add_(out, grads, alpha=1.0 - beta)",
        "    torch._foreach_add_(out, grads, alpha=beta)",
        tests=("tests/test_methods.py", "-k", "reference_step_for_step"),
        gate="conf.methods",
        what="method EMA for beta < 1/2",
    ),
    M(
        "methods.adam_bias",
        "lpcheck/methods/adam.py",
        "            torch._foreach_div_(direction, 1.0 - beta1**t)",
        "            torch._foreach_div_(direction, 1.0 - beta1 ** (t + 1))",
        tests=("tests/test_methods.py", "-k", "reference_step_for_step"),
        gate="conf.methods",
        what="Adam's first-moment bias correction off by a step",
    ),
    M(
        "methods.sign_beta",
        "lpcheck/methods/sign.py",
        "        torch._foreach_add_(m, grads, alpha=1.0 - beta)",
        "        torch._foreach_add_(m, grads, alpha=1.0)",
        tests=("tests/test_methods.py", "-k", "reference_step_for_step or ema_of_eq23"),
        gate="conf.methods",
        what="Signum without 1 - beta",
    ),
    # --- the estimators
    # --------------------------------------------------------------------------------------
    M(
        "estimate.align_unsquared",
        "lpcheck/estimate/core.py",
        "    return (U @ f) / f_sq",
        "    return (U @ f) / f_sq**0.5",
        tests=("tests/test_estimate_core.py",),
        gate="conf.estimate.*",
        what="eq. 27 over ||grad f||_2",
    ),
    M(
        "estimate.noise_primal",
        "lpcheck/estimate/core.py",
        "    return lp.lp_norm(G - f, lp.dual_exponent(p), axis=-1, check_finite=False) ** 2",
        "    return lp.lp_norm(G - f, p, axis=-1, check_finite=False) ** 2",
        tests=("tests/test_estimate_core.py",),
        gate="conf.estimate.*",
        what="Assumption 3 in the primal norm",
    ),
    M(
        "estimate.mix_convention",
        "lpcheck/estimate/core.py",
        "    return beta * m + (1.0 - beta) * G",
        "    return beta * m + G",
        tests=("tests/test_estimate_core.py",),
        gate="conf.estimate.*",
        what="eq. 41 with torch's momentum",
    ),
    M(
        "estimate.moment_unsquared",
        "lpcheck/estimate/core.py",
        "    return lp.lp_norm(U, p, axis=-1, check_finite=False) ** 2",
        "    return lp.lp_norm(U, p, axis=-1, check_finite=False)",
        tests=("tests/test_estimate_core.py",),
        gate="conf.estimate.*",
        what="eq. 28 unsquared",
    ),
    M(
        "estimate.bonferroni",
        "lpcheck/estimate/fit.py",
        "    level = 1 - (1 - confidence) / n\n",
        "    level = confidence\n",
        tests=("tests/test_estimate_fit.py", "-k", "fit_run or intervals"),
        gate="conf.estimate.*",
        what="no multiplicity correction",
    ),
    M(
        "estimate.t_quantile",
        "lpcheck/estimate/fit.py",
        "    q = float(stdtrit(k - 1, (1 + level) / 2))",
        "    q = float(stdtrit(k - 1, level))",
        tests=("tests/test_estimate_fit.py", "-k", "intervals"),
        gate="conf.estimate.*",
        what="one-sided quantile",
    ),
    M(
        "estimate.skew_unadjusted",
        "lpcheck/estimate/fit.py",
        "        gamma = g1 * math.sqrt(k * (k - 1)) / (k - 2) if adjust else g1",
        "        gamma = g1 if adjust else g1",
        tests=("tests/test_estimate_fit.py", "-k", "intervals or stretched_toward"),
        gate="conf.estimate.*",
        what="g1 in place of G1",
    ),
    M(
        "estimate.se_ddof",
        "lpcheck/estimate/fit.py",
        "    se = np.sqrt(m2 / (k - 1))  # s / sqrt(K)",
        "    se = np.sqrt(m2 / k)  # s / sqrt(K)",
        tests=("tests/test_estimate_fit.py", "-k", "intervals"),
        gate="conf.estimate.*",
        what="biased standard error",
    ),
    M(
        "estimate.c1_from_mean",
        "lpcheck/estimate/fit.py",
        '    lo = min(c[align]["lo"] for c in per)',
        '    lo = min(c[align]["mean"] for c in per)',
        tests=("tests/test_estimate_fit.py", "-k", "fit_run"),
        gate="conf.estimate.*",
        what="c1 from the means, not the lower ends",
    ),
    M(
        "estimate.quad_ratio_half",
        "lpcheck/estimate/smoothness.py",
        '        "quad_xy": 2 * (f_y - f_x - (grad_x * d).sum()) / dist**2,',
        '        "quad_xy": (f_y - f_x - (grad_x * d).sum()) / dist**2,',
        tests=("tests/test_estimate_smoothness.py",),
        gate="conf.estimate.*",
        what="eq. 4 ratio without its 2",
    ),
    M(
        "estimate.grad_ratio_primal",
        "lpcheck/estimate/smoothness.py",
        "        (lambda v: lp.lp_norm(v, q, check_finite=False)),\n        False,",
        "        (lambda v: lp.lp_norm(v, p, check_finite=False)),\n        False,",
        tests=("tests/test_estimate_smoothness.py",),
        gate="conf.estimate.*",
        what="the dual norm replaced by the primal",
    ),
    # --- the rates
    # ---------------------------------------------------------------------------------------------
    M(
        "rates.slope_center",
        "lpcheck/rates/fit.py",
        "    return (logs - logs.mean(-1, keepdims=True)) @ xc / (xc @ xc)",
        "    return logs @ x / (x @ x)",
        tests=("tests/test_rates_fit.py", "-k", "not verdict and not constant_step"),
        gate="conf.rates.*",
        what="slope through the origin",
    ),
    M(
        "rates.jackknife_factor",
        "lpcheck/rates/fit.py",
        "    return np.sqrt((n - 1) / n * ((s - s.mean(1, keepdims=True)) ** 2).sum(1))",
        "    return np.sqrt(1 / n * ((s - s.mean(1, keepdims=True)) ** 2).sum(1))",
        tests=("tests/test_rates_fit.py", "-k", "not verdict and not constant_step"),
        gate="conf.rates.*",
        what="jackknife se without n - 1",
    ),
    M(
        "rates.bound_check_c3",
        "lpcheck/rates/constants.py",
        "    c3 = c1 / (L * eta)\n",
        "    c3 = c1 / (2 * L * eta)\n",
        tests=("tests/test_rates_constants.py", "-k", "bound_check or theorem_step"),
        gate="conf.rates.*",
        what="eq. 30 inverted with a 2",
    ),
    M(
        "rates.verdict_edge",
        "lpcheck/rates/fit.py",
        "    edge = rate + tolerance\n",
        "    edge = rate + 2 * tolerance\n",
        tests=("tests/test_rates_fit.py", "-k", "verdict_rule or verdict_edge"),
        gate="conf.rates.*",
        what="the verdict's tolerance doubled (out of the gate's scope)",
    ),
    M(
        "bounds.step_cap",
        "lpcheck/bounds.py",
        '    return _pos("c1", c1) / (_pos("L", L) * _pos("c3", c3))',
        '    return 2 * _pos("c1", c1) / (_pos("L", L) * _pos("c3", c3))',
        tests=("tests/test_bounds.py",),
        gate="conf.bounds,conf.rates.*",
        what="eq. 30 doubled",
    ),
    M(
        "bounds.balanced",
        "lpcheck/bounds.py",
        "math.sqrt(2 * delta / (L * c2 * T))",
        "math.sqrt(delta / (L * c2 * T))",
        tests=("tests/test_bounds.py",),
        gate="conf.bounds,conf.rates.*",
        what="eq. 32's balanced step without 2",
    ),
    # --- the estimators and the rates outside the gate's scope (the tests' job)
    # ---------------------------------
    M(
        "estimate.observed_skew",
        "lpcheck/estimate/fit.py",
        "        shape = 4.0 / gamma**2  # a gamma law's skewness is 2/sqrt(shape)",
        "        shape = 2.0 / gamma**2  # a gamma law's skewness is 2/sqrt(shape)",
        tests=(
            "tests/test_estimate_fit.py",
            "-k",
            "live_coverage or interval_check or observed_laws_have",
        ),
        gate="conf.estimate.*",
        what="the observed law's gamma shape (coverage check)",
    ),
    # --- claims and proofs
    # -----------------------------------------------------------------------------------
    M(
        "proofs.eq10_value",
        "proofs/eq10_minimizer.py",
        "    return sympy_equal(eta * inner + (eta * N) ** 2 / 2, -(eta**2) * N**2 / 2)",
        "    return sympy_equal(eta * inner + (eta * N) ** 2 / 2, -(eta**2) * N**2 / 3)",
        tests=(
            "--lpcheck",
            "--lpcheck-only",
            "eq10.value",
            "tests/test_lp.py::test_exponent_special_values",
        ),
        gate="eq10.*,control.eq10.*",
        what="eq. 9's minimum stated as -eta^2 N^2/3",
    ),
    M(
        "proofs.eq11_kappa",
        "proofs/eq11_rescale.py",
        "kappa = (a / (a + eps)) ** rho\n",
        "kappa = (a / (a + eps)) ** (1 - rho)\n",
        tests=(
            "--lpcheck",
            "--lpcheck-only",
            "eq11.distortion",
            "tests/test_lp.py::test_exponent_special_values",
        ),
        gate="eq11.*,control.eq11.*",
        what="eq. 11's distortion with exponent 1 - rho",
    ),
    M(
        "proofs.step_condition",
        "proofs/_descent.py",
        "sp.Ge(eta * c1 - L * eta**2 * c3 / 2, eta * c1 / 2), [eta * L * c3 / 2]",
        "sp.Ge(eta * c1 - L * eta**2 * c3 / 2, eta * c1 * 3 / 4), [eta * L * c3 / 2]",
        tests=(
            "tests/test_proofs_coverage.py::"
            "test_the_unmutated_steps_hold_with_both_engines_on_the_same_statement",
        ),
        gate="thm1.*,thm2.*,control.thm*",
        what="eq. 30's consequence claimed with 3/4",
    ),
    M(
        "proofs.conformance_tolerance",
        "proofs/conformance.py",
        "close(ui, EQ21(mpmath.mpf(gi), mpmath.mpf(p), mpmath.mpf(eps)), 1e-14, 1e-300)",
        "close(ui, EQ21(mpmath.mpf(gi), mpmath.mpf(p), mpmath.mpf(eps)), 1e3, 1e-300)",
        tests=("tests/test_verify.py::test_a_subtly_wrong_rescale_turns_the_gate_red",),
        gate="conf.lp.*,control.conf.*",
        what="eq. 21's conformance check made toothless (tolerance 1e3)",
    ),
    # --- 13.5 review: mutants an outside reviewer planted, of other kinds than the above
    # -----------------------
    M(
        "methods.adam_bias2_step",
        "lpcheck/methods/adam.py",
        "            torch._foreach_div_(denom, math.sqrt(1.0 - beta2**t))",
        "            torch._foreach_div_(denom, math.sqrt(1.0 - beta2 ** (t + 1)))",
        tests=("tests/test_methods.py", "-k", "reference_step_for_step"),
        gate="conf.methods",
        what="Adam's second-moment bias correction one step ahead",
    ),
    M(
        "methods.adam_eps_inside_root",
        "lpcheck/methods/adam.py",
        '            denom = (si.sqrt() / math.sqrt(1.0 - beta2**t)).add_(hp["eps"])',
        '            denom = (si + hp["eps"]).sqrt() / math.sqrt(1.0 - beta2**t)',
        tests=("tests/test_methods.py", "tests/test_methods_optimizer.py"),
        gate="conf.methods",
        what="eps inside the root where parameters have their own step counts",
    ),
    M(
        "methods.rmsprop_eps_inside_root",
        "lpcheck/methods/rmsprop.py",
        "        avg = torch._foreach_sqrt(centred)\n        torch._foreach_add_(avg, eps)\n",
        "        avg = torch._foreach_sqrt(torch._foreach_add(centred, eps))\n",
        tests=("tests/test_methods.py", "-k", "reference_step_for_step"),
        gate="conf.methods",
        what="RMSProp's eps inside the square root",
    ),
    M(
        "methods.lion_beta_swapped",
        "lpcheck/methods/lion.py",
        "        c = torch._foreach_mul(m, beta1)\n        torch._foreach_add_(c, grads, "
        "alpha=1.0 - beta1)",
        "        c = torch._foreach_mul(m, 1.0 - beta1)\n        torch._foreach_add_(c, grads, "
        "alpha=beta1)",
        tests=("tests/test_methods.py", "tests/test_baselines.py"),
        gate="conf.methods",
        what="Lion's interpolation with beta1 and 1 - beta1 swapped",
    ),
    M(
        "methods.scion_rms_scale",
        "lpcheck/methods/norms.py",
        '        scale = math.sqrt(v.shape[-1]) if self.vector == "rms" else 1.0',
        "        scale = 1.0",
        tests=("tests/test_methods_norms.py", "tests/test_methods.py"),
        gate="conf.methods",
        what="Scion's rms LMO without its sqrt(n) (the l2 vertex)",
    ),
    M(
        "methods.lp_lmo_primal_exponent",
        "lpcheck/methods/norms.py",
        "        scale = _safe(n) ** (self.q - 1)\n",
        "        scale = _safe(n) ** (self.p - 1)\n",
        tests=("tests/test_methods_norms.py", "tests/test_methods.py"),
        gate="conf.methods",
        what="the lp LMO's normaliser with the primal exponent p - 1 for q - 1",
    ),
    M(
        "methods.adam_norm_no_bias",
        "lpcheck/methods/adam.py",
        '                    v.sqrt() / math.sqrt(1.0 - h["betas"][1] ** t) if t > 0 else '
        "torch.zeros_like(v)",
        "                    v.sqrt() if t > 0 else torch.zeros_like(v)",
        tests=("tests/test_methods.py", "tests/test_estimate_methods.py"),
        gate="conf.methods",
        what="Adam as a norm: a = sqrt(v) + eps without the bias correction",
    ),
    M(
        "methods.clipped_eta",
        "lpcheck/methods/clipped.py",
        '        eta = torch.clamp(dot(u, m, batched) / hp["rho"], max=1.0)',
        '        eta = torch.clamp(dot(u, u, batched) / hp["rho"], max=1.0)',
        tests=("tests/test_methods.py",),
        gate="conf.methods",
        what="clipped step: eta from ||u||^2 in place of <u, m>",
    ),
    M(
        "methods.heavyball_dampening",
        "lpcheck/methods/heavyball.py",
        "            torch._foreach_add_(bufs, grads, alpha=1.0 - tau)",
        "            torch._foreach_add_(bufs, grads, alpha=1.0 + tau)",
        tests=("tests/test_methods.py",),
        gate="conf.methods",
        what="heavy ball: dampening added, not subtracted",
    ),
    M(
        "methods.optimizer_decay_after",
        "lpcheck/methods/optimizer.py",
        '            if checked["weight_decay"]:\n'
        '                torch._foreach_mul_(ps, 1.0 - lr * checked["weight_decay"])\n'
        "            torch._foreach_add_(ps, d, alpha=-lr)\n",
        "            torch._foreach_add_(ps, d, alpha=-lr)\n"
        '            if checked["weight_decay"]:\n'
        '                torch._foreach_mul_(ps, 1.0 - lr * checked["weight_decay"])\n',
        tests=("tests/test_methods.py", "tests/test_methods_optimizer.py"),
        gate="conf.methods",
        what="any method as an optimizer: the decay after the step (theta - lr d)(1 - lr lambda)",
    ),
    M(
        "methods.optimizer_resume_drops_step",
        "lpcheck/methods/optimizer.py",
        "            dict(state_dict) if isinstance(state_dict, Mapping) else state_dict,\n",
        "            state_dict,\n",
        tests=("tests/test_methods_optimizer.py", "tests/test_methods.py"),
        gate="conf.methods",
        what="load_state_dict drops the step counts (Adam's bias correction restarts)",
    ),
    M(
        "optim.coupled_decay",
        "lpcheck/optim.py",
        "            direction = grads\n"
        "            if h.beta is not None:\n"
        "                _ema_(bufs, grads, h.beta)\n"
        "                direction = bufs\n"
        "            _decay_(params, h.lr, h.weight_decay)\n",
        "            grads = torch._foreach_add(grads, params, alpha=h.weight_decay)\n"
        "            direction = grads\n"
        "            if h.beta is not None:\n"
        "                _ema_(bufs, grads, h.beta)\n"
        "                direction = bufs\n",
        tests=("tests/test_optim.py", "-k", "foreach_matches_reference or decoupled_decay"),
        gate="conf.optim.*",
        what="coupled (L2) weight decay in place of eq. 25's decoupled decay",
    ),
    M(
        "optim.workspace_low_precision",
        "lpcheck/optim.py",
        "        ws_dtype = _math_dtype(dtype)\n",
        "        ws_dtype = dtype\n",
        tests=("tests/test_optim.py",),
        gate="conf.optim.*",
        what="the rescale factor of bfloat16/float16 parameters held in their own dtype",
    ),
    M(
        "fused.bf16_unrounded_m",
        "lpcheck/fused.py",
        "            m.copy_(torch.lerp(m.to(scalars.dtype), d, w))  # eq. 23, as "
        "_foreach_lerp_\n            d = m.to(scalars.dtype)  # the stored (rounded) m, as the "
        "foreach path reads it\n",
        "            d = torch.lerp(m.to(scalars.dtype), d, w)  # eq. 23, as _foreach_lerp_\n"
        "            m.copy_(d)  # the stored (rounded) m, as the foreach path reads it\n",
        tests=("tests/test_fused.py",),
        gate="conf.optim.fused*",
        what="fused step reads the unrounded m (differs from foreach only in bfloat16/float16)",
    ),
    M(
        "estimate.t_dof",
        "lpcheck/estimate/fit.py",
        "    q = float(stdtrit(k - 1, (1 + level) / 2))\n    a = gamma",
        "    q = float(stdtrit(k, (1 + level) / 2))\n    a = gamma",
        tests=("tests/test_estimate_fit.py", "-k", "intervals"),
        gate="conf.estimate.*",
        what="the t quantile with K degrees of freedom, not K - 1",
    ),
    M(
        "estimate.probe_full_sum",
        "lpcheck/estimate/probe.py",
        "        _sum_(acc).div_(self.n_blocks)\n",
        "        _sum_(acc)\n",
        tests=("tests/test_estimate_probe.py",),
        gate="conf.estimate.*",
        what="the probe's full gradient and loss summed over blocks, not averaged",
    ),
    M(
        "rates.jackknife_log10",
        "lpcheck/rates/fit.py",
        "    s = np.log(loo, out=loo) @ (",
        "    s = np.log10(loo, out=loo) @ (",
        tests=("tests/test_rates_fit.py", "-k", "not verdict and not constant_step"),
        gate="conf.rates.*",
        what="the jackknife slopes from log10 while the slope uses ln",
    ),
    M(
        "rates.bootstrap_blocks_reseeded",
        "lpcheck/rates/fit.py",
        "        idx = rng.integers(0, n, size=(min(step, n_boot - start), n))",
        "        idx = np.random.default_rng(seed).integers(0, n, size=(min(step, n_boot - "
        "start), n))",
        tests=("tests/test_rates_fit.py", "-k", "not verdict and not constant_step"),
        gate="conf.rates.*",
        what="every block of bootstrap resamplings drawn from the same seed (not independent)",
    ),
    M(
        "rates.residual_abs",
        "lpcheck/rates/fit.py",
        "    residual = float(np.abs(logs - (intercept + slope * x)).max())",
        "    residual = float((logs - (intercept + slope * x)).max())",
        tests=("tests/test_rates_fit.py",),
        gate="conf.rates.*",
        what="the power law's residual without abs (a curve below the line fits)",
    ),
    M(
        "rates.c1_largest",
        "lpcheck/rates/constants.py",
        "        self.c1 = float(self.alignment[self.resolved].min()) if self.resolved.any() else "
        "math.nan",
        "        self.c1 = float(self.alignment[self.resolved].max()) if self.resolved.any() else "
        "math.nan",
        tests=("tests/test_rates_constants.py",),
        gate="conf.rates.*",
        what="c1 the largest resolved alignment, not the least (the bound check on the wrong side)",
    ),
    M(
        "rates.epoch_ceil",
        "lpcheck/rates/simulation.py",
        "    return t * epochs // T + 1\n",
        "    return -(-t * epochs // T) + 1\n",
        tests=("tests/test_rates_simulation.py",),
        gate="conf.rates.*",
        what="the schedule's epoch index rounded up (p moves one step early)",
    ),
    M(
        "report.bound_verdict_edge",
        "lpcheck/report_page/claims.py",
        "    verdict = FAILS if r > 1 else HOLDS",
        "    verdict = FAILS if r >= 1 else HOLDS",
        tests=("tests/test_report_page.py",),
        gate="conf.rates.*",
        what="the page's bound verdict fails at observed = bound",
    ),
    M(
        "verify.skipped_control_passes",
        "lpcheck/verify/gate.py",
        '    return r["status"] == "skipped" and r["kind"] != "control"',
        '    return r["status"] == "skipped"',
        tests=("tests/test_verify.py", "-k", "skipped or gate_passes"),
        gate="conf.lp.*",
        what="a skipped negative control no longer fails the gate",
    ),
    M(
        "verify.skipped_swallows_failed",
        "lpcheck/verify/core.py",
        '    if "skipped" in statuses and all(st in ("proved", "held", "skipped") for st in '
        "statuses):",
        '    if "skipped" in statuses:',
        tests=("tests/test_verify.py", "-k", "skipped or statuses"),
        gate="conf.lp.*",
        what="an obligation with one engine skipped is 'skipped' even when another refuted it",
    ),
    M(
        "verify.z3_abs",
        "lpcheck/verify/engines.py",
        "        return z3.If(args[0] >= 0, args[0], -args[0])",
        "        return z3.If(args[0] >= 0, args[0], args[0])",
        tests=("tests/test_verify.py", "-k", "z3"),
        gate="conf.engines.*,thm1.*,thm2.*,lemma*,control.*",
        what="z3's |x| as x",
    ),
    M(
        "verify.z3_negative_power",
        "lpcheck/verify/engines.py",
        "    return out if n >= 0 else 1 / out",
        "    return out if n >= 0 else out",
        tests=("tests/test_verify.py", "-k", "z3"),
        gate="conf.engines.*,thm1.*,thm2.*,lemma*,control.*",
        what="z3's x^-n as x^n",
    ),
    M(
        "packs.scion_step_norm_hypothesis",
        "proofs/packs/scion.py",
        "    hyps = [sp.Le(N, rho), sp.Eq(H, gamma * N)]",
        "    hyps = [sp.Le(N, 2 * rho), sp.Eq(H, gamma * N)]",
        tests=("tests/test_packs.py", "-k", "every_claim_holds"),
        gate="scion.*,control.scion*",
        packs=("scion",),
        what="the pack's step-norm hypothesis weakened to ||lmo|| <= 2 rho",
    ),
    # --- mutants3: code where no mutant lived (curvature, norms and methods, rates' interval and
    # verdict, estimate's frontier and delta, the schedule's edge, checks.py) ----------------------
    M(
        "curvature.hutchpp_not_deflated",
        "lpcheck/curvature/trace.py",
        "    G = G - (G @ Q) @ Q.T\n",
        "",
        tests=("tests/test_curvature.py", "-k", "hutchpp or trace_estimators"),
        gate="conf.lp.rho",
        what="Hutch++'s Hutchinson part on G, not (I - QQ^T) G (the sketched part counted twice)",
    ),
    M(
        "curvature.hutchinson_sd_as_se",
        "lpcheck/curvature/trace.py",
        "    return float(v.mean()), float(v.std() / math.sqrt(len(v)))",
        "    return float(v.mean()), float(v.std())",
        tests=("tests/test_curvature.py", "-k", "trace"),
        gate="conf.lp.rho",
        what="the trace's standard error without 1/sqrt(samples) (the sample's sd)",
    ),
    M(
        "curvature.hutchpp_product_count",
        "lpcheck/curvature/trace.py",
        "    g = products - 2 * s\n",
        "    g = products - s\n",
        tests=("tests/test_curvature.py", "-k", "hutchpp or trace or product"),
        gate="conf.lp.rho",
        what="Hutch++ spends s products more than it reports",
    ),
    M(
        "curvature.lanczos_estimate_first_row",
        "lpcheck/curvature/krylov.py",
        "        estimates = float(beta[-1]) * S[-1].abs()",
        "        estimates = float(beta[-1]) * S[0].abs()",
        tests=("tests/test_curvature.py", "-k", "eigenpairs"),
        gate="conf.lp.rho",
        what="the Lanczos residual estimate beta_m |s_1i| for beta_m |s_mi|",
    ),
    M(
        "curvature.eigen_residual_sign",
        "lpcheck/curvature/krylov.py",
        "torch.linalg.vector_norm(op(v) - v * values[i].to(op.dtype))",
        "torch.linalg.vector_norm(op(v) + v * values[i].to(op.dtype))",
        tests=("tests/test_curvature.py", "-k", "eigenpairs"),
        gate="conf.lp.rho",
        what="the measured residual ||Hv + theta v||",
    ),
    M(
        "curvature.eigen_converged_absolute",
        "lpcheck/curvature/krylov.py",
        "Eigenpairs(values, vectors, residuals, estimates[idx], residuals <= tol * scale)",
        "Eigenpairs(values, vectors, residuals, estimates[idx], residuals <= tol)",
        tests=("tests/test_curvature.py", "-k", "eigenpairs"),
        gate="conf.lp.rho",
        what="converged when residual <= tol, not tol * ||H|| (absolute for relative)",
    ),
    M(
        "curvature.slq_weights_unsquared",
        "lpcheck/curvature/krylov.py",
        "        weights.append(S[0] ** 2)",
        "        weights.append(S[0].abs())",
        tests=("tests/test_curvature.py", "-k", "slq"),
        gate="conf.lp.rho",
        what="SLQ's quadrature weights |s_1i| for s_1i^2",
    ),
    M(
        "curvature.batches_weighted_equally",
        "lpcheck/curvature/operators.py",
        "            return [s / n for s in self.sizes]",
        "            return [1 / len(self.sizes) for s in self.sizes]",
        tests=("tests/test_curvature.py", "-k", "unequal or weights"),
        gate="conf.lp.rho",
        what="every batch weighted 1/B, not n_b/n (unequal batches)",
    ),
    M(
        "methods.lp_dual_primal",
        "lpcheck/methods/norms.py",
        "        return self._of(list(gs), self.q, batched)",
        "        return self._of(list(gs), self.p, batched)",
        tests=("tests/test_methods_norms.py",),
        gate="conf.methods",
        what="Lp's dual norm in the primal exponent",
    ),
    M(
        "methods.l1_lmo_ties_unshared",
        "lpcheck/methods/norms.py",
        "            return [-g.sign() * w / per_row(k, g, batched) for g, w in zip(gs, top)]",
        "            return [-g.sign() * w for g, w in zip(gs, top)]",
        tests=("tests/test_methods_norms.py",),
        gate="conf.methods",
        what="the l1 LMO puts weight 1 on every tied coordinate (outside the ball)",
    ),
    M(
        "methods.ellipsoidal_dual_inverted",
        "lpcheck/methods/norms.py",
        "        return row_sum([g * g / ai for ai, g in zip(self.a, gs)], batched).sqrt()",
        "        return row_sum([g * g * ai for ai, g in zip(self.a, gs)], batched).sqrt()",
        tests=("tests/test_methods_norms.py",),
        gate="conf.methods",
        what="Adam's ellipsoid's dual norm sqrt(sum a g^2) for sqrt(sum g^2/a)",
    ),
    M(
        "methods.layerwise_dual_max",
        "lpcheck/methods/norms.py",
        "        return torch.stack([self._block_norm(g, batched, True) for g in gs]).sum(0) * "
        "self.radius",
        "        return torch.stack([self._block_norm(g, batched, True) for g in gs]).amax(0) * "
        "self.radius",
        tests=("tests/test_methods_norms.py",),
        gate="conf.methods",
        what="the layerwise dual norm as the max of the layers' duals, not their sum",
    ),
    M(
        "methods.spectral_dual_frobenius",
        "lpcheck/methods/norms.py",
        '            return torch.linalg.matrix_norm(M, ord="nuc" if dual else 2)',
        '            return torch.linalg.matrix_norm(M, ord="fro" if dual else 2)',
        tests=("tests/test_methods_norms.py",),
        gate="conf.methods",
        what="the spectral norm's dual as the Frobenius norm, not the nuclear norm",
    ),
    M(
        "methods.rms_dual_unscaled",
        "lpcheck/methods/norms.py",
        "        return l2 * math.sqrt(n) if dual else l2 / math.sqrt(max(n, 1))",
        "        return l2 if dual else l2 / math.sqrt(max(n, 1))",
        tests=("tests/test_methods_norms.py",),
        gate="conf.methods",
        what="the rms norm's dual without its sqrt(n)",
    ),
    M(
        "methods.clipped_constrained_sign",
        "lpcheck/methods/clipped.py",
        "            u = [p + x for p, x in zip(params, u)]  # theta - s",
        "            u = [p - x for p, x in zip(params, u)]  # theta - s",
        tests=("tests/test_methods.py",),
        gate="conf.methods",
        what="Algorithm 4's direction theta + s, not theta - s",
    ),
    M(
        "methods.lion_m_beta1",
        "lpcheck/methods/lion.py",
        "        torch._foreach_add_(new, grads, alpha=1.0 - beta2)",
        "        torch._foreach_add_(new, grads, alpha=1.0 - beta1)",
        tests=("tests/test_methods.py", "tests/test_baselines.py"),
        gate="conf.methods",
        what="Lion's momentum update with 1 - beta1 for 1 - beta2",
    ),
    M(
        "methods.adam_amsgrad_norm",
        "lpcheck/methods/adam.py",
        '        key = "max_exp_avg_sq" if h["amsgrad"] else "exp_avg_sq"',
        '        key = "exp_avg_sq"',
        tests=("tests/test_methods.py", "tests/test_estimate_methods.py"),
        gate="conf.methods",
        what="AMSGrad's norm from v, not from the running max of v that its step divides by",
    ),
    M(
        "methods.rmsprop_centred_sign",
        "lpcheck/methods/rmsprop.py",
        "torch._foreach_addcmul(v, gbar, gbar, value=-1)",
        "torch._foreach_addcmul(v, gbar, gbar, value=1)",
        tests=("tests/test_methods.py",),
        gate="conf.methods",
        what="centred RMSProp's v + gbar^2 for v - gbar^2",
    ),
    M(
        "methods.blackbox_decay_in_direction",
        "lpcheck/methods/blackbox.py",
        "None if g is None else ((b * (1.0 - lr * lam) - c.detach()) / lr).to(g.dtype)",
        "None if g is None else ((b - c.detach()) / lr).to(g.dtype)",
        tests=("tests/test_methods_blackbox.py",),
        gate="conf.methods",
        what="the black box leaves decoupled decay in the direction",
    ),
    M(
        "methods.blackbox_replay_own_dtype",
        "lpcheck/methods/blackbox.py",
        "            data = t.detach().to(dtype=self.dtype or t.dtype, copy=True)",
        "            data = t.detach().to(dtype=t.dtype, copy=True)",
        tests=("tests/test_methods_blackbox.py",),
        gate="conf.methods",
        what="the black box replays float32 parameters in float32 (digits lost to theta' - theta)",
    ),
    M(
        "rates.tail_at_least_two",
        "lpcheck/rates/fit.py",
        "    return slice(n - min(n, max(3, math.ceil(n / 2))), n)",
        "    return slice(n - min(n, max(2, math.ceil(n / 2))), n)",
        tests=("tests/test_rates_fit.py", "-k", "tail"),
        gate="conf.rates.*",
        what="the verdict's tail of at least 2 T values, not 3",
    ),
    M(
        "rates.bootstrap_one_sided_quantiles",
        "lpcheck/rates/fit.py",
        "[(1 - level) / 2, (1 + level) / 2])",
        "[1 - level, level])",
        tests=("tests/test_rates_fit.py", "-k", "not verdict and not constant_step"),
        gate="conf.rates.*",
        what="the studentized bootstrap's quantiles at 1 - level and level (a 2 level - 1 "
        "interval)",
    ),
    M(
        "rates.regime_faster_edge",
        "lpcheck/rates/fit.py",
        "        if tail.hi < rate - tolerance\n",
        "        if tail.hi < rate + tolerance\n",
        tests=("tests/test_rates_fit.py", "-k", "verdict"),
        gate="conf.rates.*",
        what="the regime 'faster' below r + tau, not r - tau",
    ),
    M(
        "rates.check_rate_tolerance_edge",
        "lpcheck/rates/fit.py",
        "    if tolerance is not None and not tolerance < -rate:",
        "    if tolerance is not None and not tolerance <= -rate:",
        tests=("tests/test_rates_fit.py", "-k", "verdict"),
        gate="conf.rates.*",
        what="a tolerance equal to |rate| accepted (a flat mean would be confirmed)",
    ),
    M(
        "estimate.c2_unclipped",
        "lpcheck/estimate/fit.py",
        "    return max(0.0, float(np.max(y - c3 * x)))",
        "    return float(np.max(y - c3 * x))",
        tests=("tests/test_estimate_fit.py", "-k", "frontier or best_pair or c2"),
        gate="conf.estimate.*",
        what="c2 for a given c3 not clipped at 0 (a negative c2)",
    ),
    M(
        "estimate.stationary_c3",
        "lpcheck/estimate/fit.py",
        "    stationary = math.sqrt(a * k / (2 * delta * L))",
        "    stationary = math.sqrt(a * k / (delta * L))",
        tests=("tests/test_estimate_fit.py", "-k", "best_pair"),
        gate="conf.estimate.*",
        what="the cap branch's stationary c3 sqrt(a/A) without A's 2",
    ),
    M(
        "estimate.delta_from_last_loss",
        "lpcheck/estimate/fit.py",
        "    delta = losses[0][0] - bound\n",
        "    delta = losses[-1][0] - bound\n",
        tests=("tests/test_estimate_fit.py", "-k", "fit_run or losses"),
        gate="conf.estimate.*",
        what="delta from the last checkpoint's loss, not f(theta_0)",
    ),
    M(
        "schedule.single_epoch_at_2",
        "lpcheck/schedule.py",
        "    if epoch == 1:\n        return p_max\n"
        "    if epoch == total_epochs:\n        return 2.0\n",
        "    if epoch == total_epochs:\n        return 2.0\n"
        "    if epoch == 1:\n        return p_max\n",
        tests=("tests/test_schedule.py",),
        gate="conf.schedule.*",
        what="S = 1: the one epoch at p = 2, not p_max (the end checked before the start)",
    ),
    M(
        "schedule.p_max_below_2",
        "lpcheck/schedule.py",
        '    return checks.real("p_max", p_max, low=2.0)',
        '    return checks.real("p_max", p_max, low=1.0)',
        tests=("tests/test_schedule.py",),
        gate="conf.schedule.*",
        what="p_max in [1, 2) accepted (p < 2: rho < 0, the rescale inverted)",
    ),
    M(
        "checks.open_low_end",
        "lpcheck/checks.py",
        "    bad_low = low is not None and (v <= low if low_open else v < low)",
        "    bad_low = low is not None and v < low",
        tests=("tests/test_checks.py",),
        gate="conf.lp.rho",
        what="an open lower end accepts its end point (lr = 0 where lr > 0 is asked)",
    ),
    M(
        "checks.bool_is_a_number",
        "lpcheck/checks.py",
        "    if isinstance(value, bool) or not isinstance(value, numbers.Real):",
        "    if not isinstance(value, numbers.Real):",
        tests=("tests/test_checks.py",),
        gate="conf.lp.rho",
        what="True accepted as the number 1",
    ),
    M(
        "checks.representable_tie",
        "lpcheck/checks.py",
        "    if size <= zero_at or size >= inf_at:",
        "    if size < zero_at or size >= inf_at:",
        tests=("tests/test_checks.py",),
        gate="conf.lp.rho",
        what="half the smallest subnormal (which rounds to 0) accepted as representable",
    ),
    M(
        "rates.grad_l2_squared",
        "lpcheck/rates/simulation.py",
        'FIRST_POWER = ("grad_l2", "dual")',
        'FIRST_POWER = ("dual",)',
        tests=("tests/test_rates_simulation.py", "-k", "metric"),
        gate="conf.rates.*",
        what="the grad_l2 metric accumulated squared (||grad f||_2^2 for ||grad f||_2)",
    ),
    M(
        "rates.metric_p_frozen",
        "lpcheck/rates/simulation.py",
        "        return layer.Lp(method.p_epoch(s, epochs))",
        "        return layer.Lp(method.p_epoch(1, epochs))",
        tests=("tests/test_rates_simulation.py", "-k", "metric"),
        gate="conf.rates.*",
        what="grad_q_sq measured at the first epoch's p, not the active p",
    ),
    M(
        "estimate.peak_lr_check_reversed",
        "lpcheck/estimate/fit.py",
        "    if seen > peak * (1 + 1e-9):",
        "    if peak > seen * (1 + 1e-9):",
        tests=("tests/test_estimate_fit.py", "-k", "peak_lr or lr_bound or fit_run"),
        gate="conf.estimate.*",
        what="lr_used refused when above the checkpoints' lr (a warm-up's peak), not below",
    ),
    M(
        "estimate.adam_decay_swapped",
        "lpcheck/estimate/directions.py",
        "    return m, state, (0.0 if decoupled else wd), (wd if decoupled else 0.0)",
        "    return m, state, (wd if decoupled else 0.0), (0.0 if decoupled else wd)",
        tests=("tests/test_estimate_methods.py",),
        gate="conf.estimate.*",
        what="Adam/AdamW read with coupled and decoupled weight decay swapped",
    ),
    M(
        "estimate.sgd_fresh_buffer_step",
        "lpcheck/estimate/directions.py",
        '        "step": [torch.tensor(0.0 if b is None else 1.0, dtype=torch.float64) for b in '
        "bufs],",
        '        "step": [torch.tensor(1.0, dtype=torch.float64) for b in bufs],',
        tests=("tests/test_estimate_methods.py",),
        gate="conf.estimate.*",
        what="SGD's momentum read as past its first step where torch has no buffer yet",
    ),
    M(
        "estimate.rmsprop_centered_dropped",
        "lpcheck/estimate/directions.py",
        '        centered=group["centered"],',
        "        centered=False,",
        tests=("tests/test_estimate_methods.py",),
        gate="conf.estimate.*",
        what="torch's RMSprop(centered=True) read as uncentred",
    ),
    M(
        "methods.lion_default_betas",
        "lpcheck/methods/lion.py",
        '    defaults = {"betas": (0.9, 0.99)}',
        '    defaults = {"betas": (0.9, 0.999)}',
        tests=(
            "tests/test_methods.py",
            "tests/test_baselines.py",
            "tests/test_methods_registry.py",
        ),
        gate="conf.methods",
        what="Lion's default beta2 0.999 (Adam's), not the paper's 0.99",
    ),
    M(
        "report.tally_holds_over_fails",
        "lpcheck/report_page/claims.py",
        "        out[FAILS if FAILS in vs else HOLDS if HOLDS in vs else UNCHECKED] += 1",
        "        out[HOLDS if HOLDS in vs else FAILS if FAILS in vs else UNCHECKED] += 1",
        tests=("tests/test_report_page.py",),
        gate="conf.rates.*",
        what="a claim with one holding and one failing row counted as holding",
    ),
    M(
        "report.alignment_worst_by_lo",
        "lpcheck/report_page/claims.py",
        '    worst = min(f["checkpoints"], key=lambda c: c[series]["hi"])',
        '    worst = min(f["checkpoints"], key=lambda c: c[series]["lo"])',
        tests=("tests/test_report_page.py",),
        gate="conf.rates.*",
        what="the failing alignment checkpoint picked by its lower end, not its upper end",
    ),
    M(
        "curvature.lanczos_single_reorth",
        "lpcheck/curvature/krylov.py",
        "        return w - Q.T @ (Q @ w)\n",
        "        return w\n",
        tests=("tests/test_curvature.py", "-k", "eigen or lanczos or top or slq"),
        gate="conf.lp.rho",
        what="Lanczos reorthogonalised once, not twice",
    ),
]

# Survivors argued equivalent (no test can kill what changes no behaviour): mutant id -> why. The
# report prints each beside the totals; a survivor not here is a gap in the tests.
EQUIVALENT = {
    "curvature.lanczos_single_reorth": (
        "in exact arithmetic the second pass subtracts 0. In floating point a second Gram-Schmidt "
        "pass matters only where the first cancels most of w (||w|| after << ||w|| before, "
        "Kahan's 'twice is enough'); _orthogonal gets w after the three-term recurrence, whose "
        "components along the earlier vectors are rounding-sized because every earlier vector "
        "was reorthogonalised, so the first pass keeps w's norm and leaves an orthogonality error "
        "of eps. No operator tried (300x300 spectra of condition 1e12, one outlier at 1e8, start "
        "vectors 1e-6 to 1e-11 from an invariant subspace) told one pass from two in Q Q^T - I "
        "or in the Ritz values; the second pass is a safety margin, kept"
    ),
}


# ---------------------------------------------------------------------------------------------
# the catalogue against a tree


def find_once(text: str, m: Mutant) -> int:
    """The offset of m.original in text; raises if it is not there exactly once."""
    n = text.count(m.original)
    if n != 1:
        raise ValueError(
            f"mutant {m.id}: its original text occurs {n} times in {m.file} (must be exactly "
            f"once): {m.original!r}; update the catalogue"
        )
    return text.index(m.original)


def check_catalogue(root: Path, catalogue=CATALOGUE) -> None:
    """Every mutant applies to the tree at root: ids unique, files present, originals found exactly
    once, replacements different, test files present."""
    ids = [m.id for m in catalogue]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"duplicate mutant ids: {dup}")
    for m in catalogue:
        path = root / m.file
        if not path.is_file():
            raise FileNotFoundError(f"mutant {m.id}: no file {m.file}")
        if m.original == m.replacement:
            raise ValueError(f"mutant {m.id}: the replacement equals the original")
        find_once(path.read_text(), m)
        for t in m.tests:
            if t.startswith("tests/") and not (root / t.split("::")[0]).is_file():
                raise FileNotFoundError(f"mutant {m.id}: no test file {t}")


def enclosing(source: str, offset: int) -> str:
    """The qualified name of the innermost function (or class) around a character offset ('<module>'
    if none)."""
    line = source.count("\n", 0, offset) + 1
    best, best_span = "<module>", None

    def walk(node, prefix):
        nonlocal best, best_span
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if child.lineno <= line <= child.end_lineno:
                    span = child.end_lineno - child.lineno
                    if best_span is None or span <= best_span:
                        best, best_span = name, span
                walk(child, name + ".")
            else:
                walk(child, prefix)

    tree = ast.parse(source)
    walk(tree, "")
    if best == "<module>":  # a module-level constant (a table of coefficients): its name
        for node in tree.body:
            if (
                isinstance(node, (ast.Assign, ast.AnnAssign))
                and node.lineno <= line <= node.end_lineno
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                best = next((t.id for t in targets if isinstance(t, ast.Name)), best)
    return best


def gate_scope(root: Path) -> dict:
    """{file: set of qualified names or {'*'}} that the gate's conformance modules say they
    check."""
    scope: dict = {}
    for path in sorted((root / "proofs").glob("conformance*.py")):
        tree = ast.parse(path.read_text())
        for (
            node
        ) in tree.body:  # read CODE_CHECKED without importing the module (no torch, no hypothesis)
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", "") == "CODE_CHECKED" for t in node.targets
            ):
                for file, names in ast.literal_eval(node.value).items():
                    scope.setdefault(file, set()).update(names)
    return scope


def in_scope(m: Mutant, root: Path, scope: dict) -> tuple[bool, str]:
    """Whether the gate says it checks the code the mutant changes, and why."""
    if m.file.startswith("proofs/") or m.file == "lpcheck/formulas.py":
        return True, "claims and proofs (proofs/, formulas.py)"
    source = (root / m.file).read_text()
    where = enclosing(source, find_once(source, m))
    names = scope.get(m.file, set())
    if "*" in names or where in names or where.split(".")[0] in names:
        return True, f"{m.file}:{where} is in CODE_CHECKED"
    return False, f"{m.file}:{where} is not in the gate's CODE_CHECKED"


# ---------------------------------------------------------------------------------------------
# running


def copy_tree(root: Path, dest: Path) -> None:
    """The tracked files of the checkout at root (as they are now, edits included) into dest."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.split(b"\0")
    for f in filter(None, files):
        src = root / f.decode()
        if src.is_file():
            out = dest / f.decode()
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)


def _env(copy: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    env.pop("PYTHONSTARTUP", None)
    return env


def check_copy_imports(copy: Path) -> None:
    """The copy's lpcheck and proofs are what a run in it imports (not the installed checkout)."""
    code = "import lpcheck, lpcheck.proofs as P; print(lpcheck.__file__); print(P.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=copy, env=_env(copy), capture_output=True, text=True
    )
    paths = out.stdout.split()
    if (
        out.returncode
        or len(paths) != 2
        or not all(Path(p).resolve().is_relative_to(copy.resolve()) for p in paths)
    ):
        raise RuntimeError(
            f"a run in {copy} does not import the copy's lpcheck: {out.stdout} {out.stderr[-500:]}"
        )


def gate_key(selection: str | None, packs: tuple = ()) -> str:
    """The name of a gate selection in the report (its baseline's key)."""
    return (selection or "*") + "".join(f" --pack {p}" for p in packs)


def run_gate(copy: Path, selection: str | None, timeout: int, jobs: int, packs: tuple = ()) -> dict:
    out_dir = copy / ".mutation-gate"
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "lpcheck",
        "verify",
        "--quiet",
        "--out",
        str(out_dir),
        "--jobs",
        str(jobs),
        "--timeout",
        str(timeout),
    ] + (["--only", selection] if selection else [])
    for pack in packs:
        cmd += ["--pack", pack]
    start = time.time()
    try:
        proc = subprocess.run(
            cmd, cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=3600
        )
        rc, tail = proc.returncode, (proc.stdout + proc.stderr)[-1500:]
    except subprocess.TimeoutExpired:
        rc, tail = None, "the gate ran past 3600 s"
    failing = []
    try:
        s = json.loads((out_dir / "verify.json").read_text())["summary"]
        failing = (
            [f"{i}" for i in s["failing"]]
            + [f"module {m}" for m in s["modules_broken"]]
            + [f"finding {f}" for f in s["findings_broken"]]
            + [f"not run {i}" for i in s["not_run"][:5]]
        )
    except (OSError, ValueError, KeyError):
        pass
    return {
        "caught": rc is not None
        and rc != 0,  # a timeout is no catch: it shows nothing about the mutant
        "rc": rc,
        "failing": failing,
        "seconds": round(time.time() - start, 1),
        "command": "lpcheck verify"
        + (f" --only '{selection}'" if selection else "")
        + "".join(f" --pack {p}" for p in packs),
        "tail": "" if rc == 0 else tail,
    }


def run_tests(copy: Path, tests: tuple, timeout: int) -> dict:
    # one process (-o addopts): a mutant's few test files gain nothing from xdist's workers
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-o",
        "addopts=-ra",
        "-p",
        "no:cacheprovider",
        *tests,
    ]
    start = time.time()
    try:
        proc = subprocess.run(
            cmd, cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=timeout
        )
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = None, f"the tests ran past {timeout} s\n{(e.stdout or b'')[-1000:]!r}"
    failed = [
        line.split(" ", 1)[1].split(" - ")[0]
        for line in out.splitlines()
        if line.startswith(("FAILED ", "ERROR "))
    ]
    # rc 1: tests failed; 2/3/4: collection or usage errors (the mutant broke the import, still a
    # catch); 5: no test collected (a catalogue error: never a catch); None: past the timeout (no
    # catch: a slow machine would otherwise count as tests that fail)
    return {
        "caught": rc is not None and rc not in (0, 5),
        "rc": rc,
        "failed": failed[:10],
        "seconds": round(time.time() - start, 1),
        "command": "pytest -x " + " ".join(tests),
        "tail": "" if rc == 0 else out[-1500:],
    }


def run_mutant(m: Mutant, copy: Path, args) -> dict:
    path = copy / m.file
    original = path.read_text()
    offset = find_once(original, m)
    path.write_text(original[:offset] + m.replacement + original[offset + len(m.original) :])
    try:
        gate = run_gate(
            copy, None if args.full_gate else m.gate, args.gate_timeout, args.gate_jobs, m.packs
        )
        tests = run_tests(copy, m.tests, args.test_timeout)
    finally:
        path.write_text(original)
    return {"gate": gate, "tests": tests}


# ---------------------------------------------------------------------------------------------
# report


def totals(rows) -> dict:
    def rate(sel, key):
        n = len(sel)
        k = sum(r[key]["caught"] for r in sel)
        return {"caught": k, "of": n, "rate": None if not n else round(k / n, 4)}

    scoped = [r for r in rows if r["in_scope"]]
    return {
        "mutants": len(rows),
        "in_scope": len(scoped),
        "gate_in_scope": rate(scoped, "gate"),
        "gate_all": rate(rows, "gate"),
        "tests_all": rate(rows, "tests"),
        "tests_in_scope": rate(scoped, "tests"),
        "either": {
            "caught": sum(r["gate"]["caught"] or r["tests"]["caught"] for r in rows),
            "of": len(rows),
        },
        "survivors": [r["id"] for r in rows if not (r["gate"]["caught"] or r["tests"]["caught"])],
    }


def markdown(report: dict) -> str:
    t = report["totals"]

    def pct(x):
        return "—" if x["rate"] is None else f"{x['caught']}/{x['of']} ({100 * x['rate']:.0f} %)"

    out = [
        "# Mutation testing: does the gate (and do the tests) catch a planted bug?\n",
        "Commands (in order; a later one with --resume ran the mutants it names again): "
        + "; ".join(f"`{c}`" for c in report.get("commands", [report["command"]]))
        + "  ",
        f"Machine: {report['machine']}  ",
        f"Commit: {report['commit']}; {report['finished']}/{len(report['catalogue_ids'])} mutants "
        f"run; wall time of the mutants' runs {report['seconds']:.0f} s (the unmutated baselines "
        f"apart: {sum(b['seconds'] for b in report.get('baseline_gate', {}).values()):.0f} s).\n",
        "Each mutant is one single-point edit of a copy of the tracked files. **Gate**: `lpcheck "
        "verify --only SELECTION` in the copy (a catch by a selection is a catch by the whole "
        "gate, which fails when any obligation fails: the gate's rate is a lower bound). "
        "**Tests**: `pytest -x` on the mutant's test files. **In scope**: the mutated code is "
        "what the gate says it checks (proofs/, formulas.py, or a function in a conformance "
        "module's CODE_CHECKED).\n",
        *(
            [
                "Run without their unmutated baseline (--no-baseline): "
                f"{', '.join(report['baseline_skipped'])}; the whole gate "
                "(experiments/results/verify), regenerated before that invocation with the same "
                "lpcheck and proofs code, passed unmutated.\n"
            ]
            if report.get("baseline_skipped")
            else []
        ),
        "## Totals\n",
        f"- gate, in-scope mutants: **{pct(t['gate_in_scope'])}** (target >= 90 %)",
        f"- tests, all mutants: **{pct(t['tests_all'])}** (target 100 %)",
        f"- gate, all mutants: {pct(t['gate_all'])}; tests, in-scope: {pct(t['tests_in_scope'])}",
        f"- caught by neither: {', '.join(t['survivors']) or 'none'}",
        "- in scope but missed by the gate's selection: "
        + (
            ", ".join(
                r["id"] for r in report["mutants"] if r["in_scope"] and not r["gate"]["caught"]
            )
            or "none"
        )
        + "\n",
        *_equivalence_notes(t["survivors"]),
        "## Mutants\n",
        "| id | file | change | in scope | gate | caught by (gate) | tests | s (gate + tests) | "
        "commit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["mutants"]:
        g, k = r["gate"], r["tests"]
        new = f"`{_short(r['replacement'])}`" if r["replacement"].strip() else "(deleted)"
        change = f"`{_short(r['original'])}` → {new}"
        out.append(
            f"| {r['id']} | {r['file']} | {change} ({r['what']}) | "
            f"{'yes' if r['in_scope'] else 'no'} | {'**caught**' if g['caught'] else 'survived'} "
            f"(`{gate_key(r['gate_selection'], tuple(r.get('gate_packs', ())))}`) | "
            f"{_short(', '.join(g['failing']), 90)} | "
            f"{'**caught**' if k['caught'] else 'survived'} ({' '.join(r['test_args'])}) | "
            f"{g['seconds']:.0f} + {k['seconds']:.0f} | {r.get('commit', report['commit'])} |"
        )
    return "\n".join(out) + "\n"


def _equivalence_notes(survivors) -> list:
    """The argument for each survivor in EQUIVALENT, and the survivors without one (gaps)."""
    if not survivors:
        return []
    out = ["## Survivors\n"]
    for i in survivors:
        out.append(
            f"- {i}: equivalent: {EQUIVALENT[i]}."
            if i in EQUIVALENT
            else f"- {i}: **not argued equivalent: a gap in the tests**"
        )
    return out + [""]


def _short(s, n=60):
    s = " ".join(str(s).split()).replace("|", "\\|")
    return s if len(s) <= n else s[: n - 1] + "…"


def _machine() -> str:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}"


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def write_report(out: Path, report: dict) -> None:
    from lpcheck.report import atomic_write

    report["totals"] = totals(report["mutants"])
    atomic_write(out / "mutation.json", lambda p: p.write_text(json.dumps(report, indent=1)))
    atomic_write(out / "mutation.md", lambda p: p.write_text(markdown(report)))


# ---------------------------------------------------------------------------------------------
# command line


def parse(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--only", default=None, help="comma-separated mutant ids (default: the whole catalogue)"
    )
    ap.add_argument(
        "--jobs", type=int, default=1, help="mutants run at once, each in its own copy (default 1)"
    )
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "mutation"))
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the mutants already in OUT/mutation.json (same texts)",
    )
    ap.add_argument(
        "--redo",
        default=None,
        help="with --resume: run these comma-separated ids again (e.g. after "
        "the gate or the tests were improved where they survived)",
    )
    ap.add_argument(
        "--full-gate",
        action="store_true",
        help="run the whole gate for every mutant, not its selection",
    )
    ap.add_argument(
        "--gate-jobs", type=int, default=2, help="lpcheck verify --jobs in each run (default 2)"
    )
    ap.add_argument(
        "--gate-timeout",
        type=int,
        default=240,
        help=(
            "lpcheck verify --timeout in each run (default 240 s: a loaded machine must not time "
            "out unmutated obligations)"
        ),
    )
    ap.add_argument(
        "--test-timeout",
        type=int,
        default=1200,
        help="seconds for one mutant's tests (default 1200)",
    )
    ap.add_argument(
        "--no-baseline",
        action="store_true",
        help=(
            "skip the unmutated run of each gate selection (by default each must pass before any "
            "mutant)"
        ),
    )
    ap.add_argument(
        "--render",
        action="store_true",
        help="rewrite OUT/mutation.md from OUT/mutation.json, run nothing",
    )
    ap.add_argument(
        "--list",
        action="store_true",
        help="print the catalogue and whether each mutant is in scope",
    )
    args = ap.parse_args(argv)
    for name in ("jobs", "gate_jobs", "gate_timeout", "test_timeout"):
        if getattr(args, name) < 1:
            ap.error(
                f"--{name.replace('_', '-')} must be an integer >= 1, got {getattr(args, name)}"
            )
    known = {m.id for m in CATALOGUE}
    if args.only is not None:
        ids = [i.strip() for i in args.only.split(",") if i.strip()]
        unknown = [i for i in ids if i not in known]
        if not ids or unknown:
            ap.error(f"--only: unknown mutant ids {unknown or args.only!r}; --list shows them")
        args.only = ids
    if args.render and not (Path(args.out) / "mutation.json").is_file():
        ap.error(
            f"--render: no {Path(args.out) / 'mutation.json'} to render (run the catalogue first)"
        )
    args.redo = [i.strip() for i in (args.redo or "").split(",") if i.strip()]
    if [i for i in args.redo if i not in known]:
        ap.error(f"--redo: unknown mutant ids {[i for i in args.redo if i not in known]}")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    check_catalogue(ROOT)  # loudly, before anything runs
    scope = gate_scope(ROOT)
    chosen = [m for m in CATALOGUE if args.only is None or m.id in args.only]
    if args.list:
        for m in chosen:
            ok, why = in_scope(m, ROOT, scope)
            print(f"{m.id:<32} {'in scope' if ok else 'out     '}  {why}")
        return 0
    out = Path(args.out)
    if args.render:
        write_report(out, json.loads((out / "mutation.json").read_text()))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "mutation.log", "a")

    def say(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    # with --resume the table is the whole catalogue: the rows kept from OUT/mutation.json and the
    # mutants run now (--only narrows what runs, never what the table holds: partial runs merge into
    # one table)
    listed = CATALOGUE if args.resume else chosen
    report = {
        "command": "python experiments/mutation.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": _machine(),
        "commit": _commit(),
        "catalogue_ids": [m.id for m in listed],
        "mutants": [],
        "seconds": 0.0,
        "finished": 0,
    }
    done, old_report = {}, {}
    if args.resume and (out / "mutation.json").is_file():
        old = old_report = json.loads((out / "mutation.json").read_text())
        by_id = {m.id: m for m in listed}
        done = {
            r["id"]: r
            for r in old.get("mutants", [])
            if r["id"] in by_id
            and r["id"] not in args.redo
            and (r["file"], r["original"], r["replacement"])
            == (by_id[r["id"]].file, by_id[r["id"]].original, by_id[r["id"]].replacement)
        }
        report["seconds"] = old.get("seconds", 0.0) if done else 0.0
        report["commands"] = old.get("commands", [old.get("command")]) + [report["command"]]
        report["baseline_skipped"] = [i for i in old.get("baseline_skipped", []) if i in done]
        for r in done.values():  # rows from an earlier invocation keep the commit they ran at
            r.setdefault("commit", old.get("commit", "unknown"))
    # a kept row whose mutant's texts changed since (the catalogue followed an edit of the code) is
    # stale: it runs again even outside --only, so the table never shows a result for a mutant that
    # no longer exists
    stale = [
        m
        for m in listed
        if m.id not in done
        and m not in chosen
        and any(r["id"] == m.id for r in old_report.get("mutants", []))
    ]
    todo = [m for m in chosen if m.id not in done] + stale
    say(
        f"{len(listed)} mutants, {len(done)} kept from {out / 'mutation.json'}, {len(todo)} to run"
        + (f" ({len(stale)} stale: {', '.join(m.id for m in stale)})" if stale else "")
        + f", {args.jobs} at once"
    )
    start = time.time()
    base = Path(tempfile.mkdtemp(prefix="lpcheck-mutation-"))
    copies = []
    try:
        for j in range(min(args.jobs, max(1, len(todo)))):
            copy = base / f"copy{j}"
            copy_tree(ROOT, copy)
            check_copy_imports(copy)
            copies.append(copy)
        rows = dict(done)
        if args.no_baseline:
            report["baseline_gate"] = old_report.get("baseline_gate", {})
            report["baseline_skipped"] = sorted(
                set(report.get("baseline_skipped", []) + [m.id for m in todo])
            )
        else:  # a catch means something only where the unmutated selection passes
            selections = list(
                dict.fromkeys((None if args.full_gate else m.gate, m.packs) for m in todo)
            )
            # a baseline from another commit stays in the report for the rows it judged, but is run
            # again before it judges a mutant of this invocation
            same = old_report.get("commit") == report["commit"]
            report["baseline_gate"] = {
                k: v for k, v in old_report.get("baseline_gate", {}).items() if not v["caught"]
            }
            for sel, packs in selections:
                if same and gate_key(sel, packs) in report["baseline_gate"]:
                    continue
                b = run_gate(copies[0], sel, args.gate_timeout, args.gate_jobs, packs)
                report["baseline_gate"][gate_key(sel, packs)] = {
                    **{k: b[k] for k in ("caught", "failing", "seconds")},
                    "commit": report["commit"],
                }
                say(
                    f"baseline (unmutated) {b['command']}: "
                    f"{'FAILS ' + str(b['failing']) if b['caught'] else 'passes'} "
                    f"({b['seconds']:.0f} s)"
                )
                if b["caught"]:
                    say(
                        "the unmutated gate selection fails: no mutant can be judged by it; "
                        "stopping"
                    )
                    return 1

        def row(m, result):
            ok, why = in_scope(m, ROOT, scope)
            return {
                "id": m.id,
                "file": m.file,
                "original": m.original,
                "replacement": m.replacement,
                "what": m.what,
                "in_scope": ok,
                "scope_reason": why,
                "gate_selection": None if args.full_gate else m.gate,
                "gate_packs": list(m.packs),
                "test_args": list(m.tests),
                "commit": report["commit"],
                **result,
            }

        free = list(copies)

        def work(m):
            copy = free.pop()
            try:
                return m, run_mutant(m, copy, args)
            finally:
                free.append(copy)

        prior = report["seconds"]
        report["mutants"] = [rows[c.id] for c in listed if c.id in rows]
        report["finished"] = len(report["mutants"])
        start = time.time()  # the mutants' own clock, for the ETA (the baselines ran before it)
        with ThreadPoolExecutor(max_workers=len(copies) or 1) as pool:
            for k, (m, result) in enumerate(pool.map(work, todo), 1):
                rows[m.id] = row(m, result)
                report["mutants"] = [rows[c.id] for c in listed if c.id in rows]
                report["finished"] = len(report["mutants"])
                elapsed = time.time() - start
                report["seconds"] = round(prior + elapsed, 1)
                write_report(
                    out, report
                )  # after every mutant: an interruption loses none that finished
                eta = elapsed / k * (len(todo) - k)
                r = rows[m.id]
                say(
                    f"{k}/{len(todo)} {m.id}: gate "
                    f"{'caught' if r['gate']['caught'] else 'SURVIVED'} "
                    f"({r['gate']['seconds']:.0f} s), tests "
                    f"{'caught' if r['tests']['caught'] else 'SURVIVED'} "
                    f"({r['tests']['seconds']:.0f} s); ETA {eta / 60:.0f} min"
                )
        report["seconds"] = round(prior + time.time() - start, 1)
        write_report(out, report)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        log.close()
    t = totals(report["mutants"])
    print(
        f"gate (in scope): {t['gate_in_scope']}; tests: {t['tests_all']}; report: "
        f"{out / 'mutation.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
