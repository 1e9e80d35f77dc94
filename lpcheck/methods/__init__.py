"""The method layer: one description of an optimizer's direction, state and geometry, for every
pillar.

The estimators (Assumptions 1, 3, 5, 6 in the method's own norm), the rates runner (all seeds in one
(seeds, d) tensor) and the proof gate's conformance checks all read an optimizer through this one
protocol, so "any optimizer" means: any built-in here, any user `Method` subclass, and any
`torch.optim.Optimizer` through the black box.

A `Method` (lpcheck/methods/base.py) is
- `name`, `summary`, `hp`: hyperparameters checked by `lpcheck.checks` (named ValueErrors), as
  Python values; `check(hp)` validates overrides, `replace(**hp)` gives a changed copy, `spec()` a
  string that `resolve` reads back;
- `init(params) -> state`: a dict key -> list of tensors, one per parameter (tensors only: it saves
  and loads with torch.load(weights_only=True)); 0-d CPU tensors for counters such as Adam's step;
- `update(grads, state, hp=None, *, params=None, batched=False) -> (direction, new_state)`: a pure
  function (no input changed in place; the caller decides what to keep). The parameter update is
              theta <- (1 - lr lambda) theta - lr * direction,
  with lr and the decoupled weight decay lambda the caller's, never inside the direction, so that an
  estimator measures the direction alone. The step count lives in the state (there is no t
  argument): the direction at a point is a function of (grads, state, hp) alone, which is what a
  conditional expectation given F_t (eq. 43-44: the state before step t fixed, a fresh g_t) needs.
  `params` is needed only by methods whose direction depends on theta (`needs_params(hp)`: the
  constrained clipped step, a black box);
- `norm(state=None, hp=None) -> Norm` (lpcheck/methods/norms.py): the norm its analysis uses, with
  `norm(x)`, `dual(g)`, `lmo(g)` and `sharp(g)` over lists of tensors; where it depends on the state
  (Adam's ellipsoid) it is read from the state given.

Batched seeds: with batched=True every tensor has a leading seed axis and each row is an independent
problem: norms, dot products and clipping factors are taken per row (tested: batched == a loop over
seeds, to 1e-12 in float64). Elementwise methods (`elementwise = True`) are batched by construction.

Built-ins, one file each with the algorithm in its docstring (`METHODS` lists them; each is tested
step for step against an independent reference, tests/test_methods.py): lpsgd, lpsgdm (eq. 21-25;
lpcheck.optim), sgd, sgdm (EMA momentum, eq. 23), heavyball (torch.optim.SGD's momentum), sign
(signSGD / Signum), lion (lion-pytorch), steepest (eq. 10; lpcheck.lp), adam (torch's Adam/AdamW),
rmsprop (torch's RMSprop), scion (LMO over a layerwise spectral / sign ball), clipped (the hybrid
clipped steepest-descent / conditional-gradient step of arXiv 2506.01913).

Around them:
- `as_optimizer(method, params, lr, weight_decay)`: any method as a torch.optim.Optimizer
  (`lpcheck.baselines.Lion` is one);
- `BlackBox(optimizer)` / `from_optimizer`: any torch.optim.Optimizer instance as a method, its
  direction read from its own step on a copy (lpcheck/methods/blackbox.py states the contract);
- `METHODS` (name -> one line), `make(name, **hp)`, `resolve(spec)` ('NAME', 'NAME:key=value,...',
  'MODULE:CLASS' for a user's Method or torch optimizer class, imported from the current directory).

To add a method: subclass `Method` in a short file (see lpcheck/methods/sgdm.py for the smallest
with state), set name/summary/defaults, write `_check`, `state_keys`, `_update` and `norm`, and add
it to `registry.BUILTINS` and to the case table of tests/test_methods.py with its reference."""

from lpcheck.methods.base import REQUIRED, Method, State
from lpcheck.methods.blackbox import (
    BlackBox,
    decoupled_lambda,
    decoupled_weight_decay,
    from_optimizer,
)
from lpcheck.methods.norms import Ellipsoidal, Layerwise, Lp, Norm, newton_schulz
from lpcheck.methods.norms import parse as parse_norm
from lpcheck.methods.optimizer import MethodOptimizer, as_optimizer
from lpcheck.methods.registry import BUILTINS, METHODS, OptimizerClass, make, parse_hp, resolve

__all__ = [
    "Method",
    "State",
    "REQUIRED",
    "Norm",
    "Lp",
    "Ellipsoidal",
    "Layerwise",
    "newton_schulz",
    "parse_norm",
    "BlackBox",
    "from_optimizer",
    "decoupled_weight_decay",
    "decoupled_lambda",
    "MethodOptimizer",
    "as_optimizer",
    "BUILTINS",
    "METHODS",
    "OptimizerClass",
    "make",
    "parse_hp",
    "resolve",
]
