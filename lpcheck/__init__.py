"""lpcheck: checks the mathematics and the numerics of the lp-norm optimizers LPSGD and LPSGDM.

Xu & Yang, "Beyond l2-norm and l-inf-norm: A Curvature-Inspired lp-Norm Scheme for Deep Neural
Networks", arXiv 2606.02078. Submodules are imported on use (`from lpcheck import lp, optim`), so
`import lpcheck` stays light and the proof gate starts without torch.
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

# Installed, the obligations live in lpcheck/proofs (a package-dir mapping in pyproject.toml). In a
# source checkout that is not installed they live in ../proofs: let `lpcheck.proofs` find them
# there.
_here = _Path(__file__).resolve().parent
if not (_here / "proofs").is_dir() and (_here.parent / "proofs" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # noqa: F821  (the package's own __path__)
