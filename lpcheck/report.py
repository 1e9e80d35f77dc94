"""The one report writer: JSON first, Markdown and PNG rendered beside it, for every pillar.

Every report carries `provenance` (the command, versions, device, time). JSON is strict: floats
that are not finite are written as the strings "inf", "-inf" and "nan" (`read_json` turns them
back). Files are replaced atomically, so a report rewritten after every unit of work is never
half-written and an interrupted run keeps everything already measured. A new file gets the mode a
plain `open()` would give it (0o666 less the umask); a rewritten file keeps its mode. `written()`
lists the files this process wrote, so an interrupted command can say which ones it kept.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import shlex
import stat
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

__all__ = [
    "provenance",
    "to_jsonable",
    "write_json",
    "read_json",
    "write_text",
    "write_report",
    "markdown_table",
    "new_figure",
    "save_figure",
    "device_name",
    "atomic_write",
    "written",
    "check_out_dir",
]

_VERSIONED = (
    "lpcheck",
    "torch",
    "numpy",
    "sympy",
    "z3-solver",
    "scipy",
    "hypothesis",
    "matplotlib",
)


def _version(dist: str):
    # torch's own string names the build (2.14.1+cu130, 2.13.0+cpu), which the distribution's
    # metadata drops: a CUDA and a CPU build of one release can give different numbers
    if dist == "torch" and "torch" in sys.modules:
        return str(
            sys.modules["torch"].__version__
        )  # a plain str, not torch's TorchVersion subclass
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device=None) -> str:
    """A human name for a torch device ('cuda:0' -> the GPU's name; cpu -> the CPU model)."""
    if device is not None and str(device).startswith("cuda") and "torch" in sys.modules:
        torch = sys.modules["torch"]
        return f"{torch.cuda.get_device_name(torch.device(device))} ({device})"
    return f"{_cpu_name()}, {os.cpu_count()} cores (cpu)"


def _git_commit(package_dir=None):
    """The commit of the lpcheck source tree this module was imported from, '+dirty' if that tree
    has uncommitted changes; None for an installed copy. Only a repository whose top level holds
    this very package counts: an installed copy can sit inside some other repository (a pyenv
    checkout, a user's project), whose commit says nothing about lpcheck."""
    package_dir = Path(package_dir or Path(__file__).parent).resolve()

    def git(*args):
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=5, cwd=package_dir
        )
        return out.stdout.strip() if out.returncode == 0 else None

    try:
        top = git("rev-parse", "--show-toplevel")
        if not top or Path(top).resolve() / package_dir.name != package_dir:
            return None
        commit = git("rev-parse", "HEAD")
        if not commit:
            return None
        return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _short(commit: str) -> str:
    return commit[:12] + ("+dirty" if commit.endswith("+dirty") else "")


def provenance(device=None, command=None) -> dict:
    """What produced a report: command line, versions, device, time (UTC), git commit if any."""
    argv = command if command is not None else [Path(sys.argv[0]).name, *sys.argv[1:]]
    threads = None
    if "torch" in sys.modules:
        threads = sys.modules["torch"].get_num_threads()
    return {
        "command": argv if isinstance(argv, str) else shlex.join(argv),
        "versions": {"python": platform.python_version(), **{d: _version(d) for d in _VERSIONED}},
        "device": device_name(device),
        "torch_threads": threads,
        "platform": platform.platform(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
    }


def to_jsonable(obj):
    """numpy/torch scalars and arrays to lists and floats; non-finite floats to strings."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy / torch
        return to_jsonable(obj.tolist())
    if isinstance(obj, str):
        return str(obj)  # str subclasses (torch's TorchVersion) as plain strings
    if isinstance(obj, bool) or obj is None or isinstance(obj, int):
        return obj if type(obj) in (bool, int) or obj is None else int(obj)
    if isinstance(obj, float):
        if math.isnan(obj):
            return "nan"
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if hasattr(obj, "__float__"):
        return to_jsonable(float(obj))
    raise TypeError(f"cannot write {type(obj).__name__} to a JSON report")


def _from_json(obj):
    if isinstance(obj, dict):
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    if obj in ("inf", "-inf", "nan"):
        return float(obj)
    return obj


_WRITTEN: list = []  # every file atomic_write replaced in this process, in order


def written() -> tuple:
    """The files this process has written through this module (atomic_write and its users), in
    order."""
    return tuple(_WRITTEN)


def _umask() -> int:
    try:  # Linux states it; reading it there changes nothing, unlike os.umask (process-wide, racy)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """An existing file's mode (a rewrite keeps it), else what open() would create: 0o666 &
    ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def atomic_write(path, write) -> Path:
    """Replace `path` atomically: `write(tmp)` fills a temporary file beside it, which is then
    renamed.

    mkstemp creates the temporary file 0600; it is given `path`'s mode first (see `_mode_for`), so
    the report is as readable as a file written with open() would be, and a rewrite never changes a
    mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix
    )
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _WRITTEN.append(path)
    return path


def write_text(path, text: str) -> Path:
    """Replace `path` atomically with `text` (UTF-8)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path, data) -> Path:
    return write_text(path, json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")


def read_json(path):
    try:
        return _from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise FileNotFoundError(f"no report at {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not a valid JSON report: {e}") from None
    except UnicodeDecodeError as e:  # binary, or another encoding: JSON is UTF-8
        raise ValueError(
            f"{path} is not a valid JSON report: not UTF-8 ({e.reason} at byte {e.start})"
        ) from None
    except RecursionError:  # nesting deeper than the parser's stack: no report of ours
        raise ValueError(f"{path} is not a valid JSON report: nested too deeply to read") from None


def markdown_table(headers, rows) -> str:
    """A GitHub-flavoured Markdown table; cells are str()-ed, '|' escaped."""

    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _provenance_md(prov: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items() if v)
    return (
        "\n---\n"
        f"Command: `{prov.get('command')}`  \n"
        f"Device: {prov.get('device')}  \n"
        f"Versions: {versions}  \n"
        f"Time: {prov.get('time')}"
        + (f", git {_short(prov['git_commit'])}" if prov.get("git_commit") else "")
        + "\n"
    )


def write_report(out_dir, stem: str, data: dict, render_markdown=None) -> dict:
    """Write `stem`.json (with provenance, added if missing) and `stem`.md rendered from that JSON.

    `render_markdown(data) -> str` renders the body; the provenance footer is appended here.
    Returns the paths written.
    """
    out_dir = Path(out_dir)
    data = dict(data)
    data.setdefault("provenance", provenance())
    paths = {"json": write_json(out_dir / f"{stem}.json", data)}
    if render_markdown is not None:
        body = render_markdown(_from_json(to_jsonable(data)))
        paths["md"] = write_text(
            out_dir / f"{stem}.md", body.rstrip() + "\n" + _provenance_md(data["provenance"])
        )
    return paths


def new_figure(nrows=1, ncols=1, squeeze=True, **kwargs):
    """(figure, axes) without pyplot: no GUI backend, no global state; save with `save_figure`.
    kwargs go to matplotlib's Figure (figsize, layout, ...); squeeze as in Figure.subplots."""
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def save_figure(fig, path) -> Path:
    """Save a matplotlib figure as PNG, atomically."""
    return atomic_write(
        path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    )


def check_out_dir(path, name: str = "--out") -> Path:
    """`path` as a folder reports can be written to, or ValueError naming the option; creates
    nothing.

    '' is refused (it would mean the current folder), as are a path that is a file, a path under a
    file, and a folder this process may not write in.
    """
    if path is None or str(path) == "":
        raise ValueError(f"{name} is empty: give the folder to write to")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{name} {p} is a file, not a folder")
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe != p and probe.exists() and not probe.is_dir():
        raise ValueError(f"{name} {p} cannot be created: {probe} is a file")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {p}: no permission to write in {probe}")
    return p
