"""The host: the one process that imports proof modules and runs their items, watched by the gate.

The gate's own process (`lpcheck verify`, pytest with --lpcheck) never runs a proof module's code. A
module can call sys.exit or os._exit, loop, or start threads at import; an obligation can swallow
the timeout. So the gate forks a host, in a process group of its own, that imports the modules (each
within the timeout) and runs the items, each in a forked worker (jobs >= 1) or one after another in
the host itself (jobs = 0). The gate keeps every deadline on its own clock: a host that does not
deliver a result in an item's time (plus a grace) is killed with its whole group, the item is a
timeout, and a fresh host goes on with the items not yet run. A host that dies takes the items it
was running with it (each an error), and a module that hangs, exits or raises at import is a broken
module, named in the report; the others still run. Every result is checked here (its id, its type,
its status) and its pass/fail is decided here: nothing unaccounted for can count as a pass.

This guards against mistakes, not against code written to deceive: a module can rewrite lpcheck
in its own process and send a forged result. The report names what decided each check, for a
referee to read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import sys
import time
import traceback
from pathlib import Path

from lpcheck.verify.core import STATUSES, Finding, FindingResult, Obligation, Result, _cap
from lpcheck.verify.runner import (
    _crashed,
    _run_forked,
    _run_inline,
    _timed_out,
    fork,
    has_fork,
    limit_of,
    reap,
)

__all__ = ["Host", "ModuleSpec", "module_specs", "import_spec", "preload"]


@dataclasses.dataclass(frozen=True)
class ModuleSpec:
    """A proof module: a built-in one by its module name, or a user's file by its path."""

    kind: str  # "builtin" or "file"
    name: str

    def __str__(self):
        return self.name


def module_specs(proofs=(), builtin=True) -> list[ModuleSpec]:
    """The built-in proof modules (unless builtin=False) and every *.py not starting with
    '_' in each `proofs` directory; checked here (a missing or empty directory), before anything
    is imported."""
    specs = []
    if builtin:
        package = importlib.import_module("lpcheck.proofs")
        specs += [ModuleSpec("builtin", f"lpcheck.proofs.{m}") for m in package.MODULES]
    seen = set()
    for directory in proofs:
        directory = Path(directory)
        if not directory.is_dir():
            raise NotADirectoryError(f"--proofs: {directory} is not a directory")
        files = sorted(f for f in directory.glob("*.py") if not f.name.startswith("_"))
        if not files:
            raise ValueError(f"--proofs: {directory} holds no *.py obligation modules")
        for f in files:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                specs.append(ModuleSpec("file", str(f)))
    return specs


def _load_file(path: Path):
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"lpcheck_user_proofs_{digest}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # workers find it; pickled references resolve
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_spec(spec: ModuleSpec):
    """Import a proof module in this process (the host; or a caller that accepts the risk)."""
    return (
        importlib.import_module(spec.name)
        if spec.kind == "builtin"
        else _load_file(Path(spec.name))
    )


def preload(specs=()):
    """Import the engines' heavy dependencies here (torch too when a built-in module is to run), so
    a host forked from this process starts at once and a module's import time is its own."""
    names = ["sympy", "numpy", "mpmath", "z3", "hypothesis", "lpcheck.verify.engines"]
    if any(s.kind == "builtin" for s in specs):
        names += ["torch", "lpcheck.formulas", "lpcheck.optim"]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _meta(item):
    """The item without its function: what the gate needs to report on it without running it."""
    return dataclasses.replace(item, fn=None)


def _items_of(module):
    return [v for v in vars(module).values() if isinstance(v, (Obligation, Finding))]


def _user_traceback(e) -> str:
    """The traceback of an import failure without the frames of lpcheck's loader and importlib."""
    frames = [
        f
        for f in traceback.extract_tb(e.__traceback__)
        if f.filename != __file__ and not f.filename.startswith("<frozen importlib")
    ]
    return "".join(traceback.format_list(frames[-8:]))


def _host_main(conn, specs, skip):
    """The host: import the modules, send what they define, then run what the gate asks for."""
    from lpcheck.verify.gate import collect

    modules = []
    for k, spec in enumerate(specs):
        if k in skip:
            continue
        conn.send(("importing", k))
        start = time.perf_counter()
        try:
            module = import_spec(spec)
        # SystemExit at import too: a broken module, not the end
        except BaseException as e:  # noqa: BLE001
            why = f"{type(e).__name__}: {e} (at import)\n" + _user_traceback(e)
            conn.send(("module", k, "error", _cap(why, 4000), time.perf_counter() - start, []))
            continue
        conn.send(
            ("module", k, "ok", "", time.perf_counter() - start, [i.id for i in _items_of(module)])
        )
        modules.append(module)
    try:
        obligations, findings = collect(modules)
    except ValueError as e:
        conn.send(("collect-error", str(e)))
        return
    items = obligations + findings
    conn.send(("items", [_meta(i) for i in items]))
    while True:
        command = conn.recv()
        if command[0] != "run":
            return
        _, indices, jobs, timeout = command
        chosen = [items[i] for i in indices]

        def on_start(j, indices=indices):
            conn.send(("start", indices[j]))

        def on_result(j, r, indices=indices):
            conn.send(("result", indices[j], r))

        if jobs >= 1 and has_fork():
            _run_forked(chosen, jobs, timeout, on_result, on_start, close=(conn,))
        else:
            _run_inline(chosen, timeout, on_result, on_start)
        conn.send(("idle",))


class HostError(RuntimeError):
    """The host could not be brought to a state where it runs items (the modules changed, it
    died)."""


@dataclasses.dataclass
class ModuleStatus:
    module: str
    status: str  # "ok", "error" or "timeout"
    detail: str
    seconds: float
    ids: list

    def to_json(self):
        return dataclasses.asdict(self)


_TIMEOUT = object()


class Host:
    """The gate's side of a host process: load the modules, run items, keep time, check results.

    with Host(specs, timeout=60) as host:
        host.load()                                   # host.modules, host.items
        results = host.run(range(len(host.items)), jobs=2, on_result=print)
    """

    def __init__(self, specs, *, timeout):
        self.specs = list(specs)
        self.timeout = float(timeout)
        self.modules = [None] * len(self.specs)  # ModuleStatus per spec
        self.items = (
            None  # the items' metadata (Obligation/Finding without fn), in collection order
        )
        self.pid = self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def grace(self, limit):
        return 1.0 + 0.1 * limit

    # -- process ---------------------------------------------------------------------------------

    def close(self):
        """Kill the host and everything it started (its process group)."""
        if self.pid is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            reap(self.pid, kill=True, group=True)
        self.pid = self.conn = None

    def _died(self):
        """The host's exit code, once its pipe has closed (killed first, in case only the pipe
        went)."""
        code = reap(self.pid, kill=True, group=True) if self.pid is not None else None
        self.pid = self.conn = None
        return code

    def _recv(self, deadline):
        """The host's next message; _TIMEOUT if none by the deadline; None if the host is gone."""
        try:
            if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                return _TIMEOUT
            msg = self.conn.recv()
        except (EOFError, OSError):
            return None
        # a message that does not unpickle: the host is not to be trusted
        except Exception as e:  # noqa: BLE001
            return ("garbled", f"{type(e).__name__}: {e}")
        return (
            msg
            if isinstance(msg, tuple) and msg
            else ("garbled", f"not a message: {_cap(repr(msg), 200)}")
        )

    def _spawn(self):
        """Start a host and let it import the modules; a module that hangs, exits or dies at import
        is marked broken and a fresh host goes on without it. Returns the host's item ids."""
        while True:
            skip = {k for k, m in enumerate(self.modules) if m is not None and m.status != "ok"}
            self.pid, self.conn = fork(_host_main, self.specs, skip, own_group=True)
            importing, started = None, time.monotonic()
            while True:
                # between imports the host runs only lpcheck's code: a generous limit, not the
                # module's
                limit = (
                    self.timeout
                    if importing is not None
                    else max(30.0, self.timeout + self.grace(self.timeout))
                )
                msg = self._recv(started + limit)
                if msg is _TIMEOUT or msg is None or msg[0] == "garbled":
                    code = self._died() if msg is None else None
                    self.close()
                    if importing is None:
                        raise HostError(
                            "the host stopped responding while loading the proof modules"
                            if msg is _TIMEOUT
                            else f"the host died while loading (exit code {code})"
                        )
                    why = (
                        f"its import did not finish within {self.timeout:g} s (--timeout)"
                        if msg is _TIMEOUT
                        else f"the process ended while importing it (exit code {code}): "
                        "a proof module must not end the process (os._exit, a signal)"
                        if msg is None
                        else f"the host sent an unreadable message while importing it ({msg[1]})"
                    )
                    self.modules[importing] = ModuleStatus(
                        str(self.specs[importing]),
                        "timeout" if msg is _TIMEOUT else "error",
                        why,
                        round(time.monotonic() - started, 3),
                        [],
                    )
                    break  # a fresh host, without this module
                started = time.monotonic()
                if msg[0] == "importing":
                    importing = msg[1]
                elif msg[0] == "module":
                    _, k, status, detail, seconds, ids = msg
                    self.modules[k] = ModuleStatus(
                        str(self.specs[k]), status, detail, round(seconds, 3), ids
                    )
                    importing = None
                elif msg[0] == "collect-error":
                    self.close()
                    raise ValueError(msg[1])
                elif msg[0] == "items":
                    return msg[1]
                else:
                    self.close()
                    raise HostError(
                        f"the host sent an unexpected message while loading: {msg[0]!r}"
                    )

    def load(self):
        """Import the modules in a host; sets self.modules (ModuleStatus each) and self.items."""
        self.items = self._spawn()
        return self

    def module_status(self):
        return [m for m in self.modules if m is not None]

    def broken(self):
        return [m for m in self.module_status() if m.status != "ok"]

    def _respawn(self):
        items = self._spawn()
        if [i.id for i in items] != [i.id for i in self.items]:
            self.close()
            raise HostError("the proof modules define other items when imported a second time")

    # -- running ---------------------------------------------------------------------------------

    def _limit(self, i):
        return limit_of(self.items[i], self.timeout)

    def _checked(self, i, res, seconds):
        """The host's result for item i if it is one; an error result saying why not, otherwise."""
        meta = self.items[i]
        want = FindingResult if isinstance(meta, Finding) else Result
        if not isinstance(res, want) or res.id != meta.id:
            got = type(res).__name__ + (f" for {res.id!r}" if hasattr(res, "id") else "")
            return _crashed(
                meta,
                f"the worker sent a {_cap(got, 200)} in place of the result for {meta.id!r}",
                seconds,
            )
        allowed = ("ok", "error", "timeout") if isinstance(meta, Finding) else STATUSES
        if res.status not in allowed:
            return _crashed(
                meta,
                f"the worker sent the status {_cap(res.status, 100)!r}, not one of {allowed}",
                seconds,
            )
        if isinstance(
            meta, Obligation
        ):  # pass/fail is decided here, from the gate's own copy of the item
            res = dataclasses.replace(
                res,
                ok=meta.passes(res.status),
                expect=meta.expect,
                kind=meta.kind,
                trivial_ok=meta.trivial_ok,
            )
        return res

    def run(self, indices, *, jobs=1, on_result=None):
        """Run the items at `indices`; {index: result}, and on_result(index, result) as each
        arrives. Every index gets a result: its own, checked, or a timeout/error that says what
        happened to it."""
        on_result = on_result or (lambda i, r: None)
        pending, results = list(indices), {}

        def done(i, res):
            results[i] = res
            pending.remove(i)
            on_result(i, res)

        while pending:
            if self.pid is None and not self._respawned(pending, done):
                break
            try:
                self.conn.send(("run", list(pending), jobs, self.timeout))
            except OSError:  # the host is gone: the next receive says so
                pass
            self._round(pending, done)
        return results

    def _respawned(self, pending, done) -> bool:
        """A fresh host; False, with every pending item given an error saying why, when none
        starts."""
        try:
            self._respawn()
        except (HostError, ValueError) as e:
            self._fail_all(pending, done, f"not run: {e}")
            return False
        return True

    def _fail_all(self, pending, done, why):
        for i in list(pending):
            done(i, _crashed(self.items[i], why, 0.0))

    def _round(self, pending, done):
        """Receive starts and results until the host is done, stuck or gone; the items it was still
        running when it was stopped stay pending, for a fresh host."""
        running, last = {}, time.monotonic()  # index -> start (monotonic)
        while True:
            deadline = (
                min(t + self._limit(i) + self.grace(self._limit(i)) for i, t in running.items())
                if running
                else last + self.timeout + self.grace(self.timeout)
            )
            msg = self._recv(deadline)
            now = time.monotonic()
            if msg is _TIMEOUT:
                self._on_timeout(running, pending, done, now)
                return
            last = now
            if (
                msg is not None
                and msg[0] == "start"
                and msg[1] in pending
                and msg[1] not in running
            ):
                running[msg[1]] = now
            elif msg is not None and msg[0] == "result" and msg[1] in running:
                i = msg[1]
                done(i, self._checked(i, msg[2], now - running.pop(i)))
            elif (
                msg is not None and msg[0] == "idle"
            ):  # the host says it is done, yet these have no result
                self._fail_all(pending, done, "the host finished without a result for it")
                return
            # the host died, or sent what the protocol does not allow: it is not to be trusted
            else:
                self._on_broken(msg, running, pending, done, now)
                return

    def _on_timeout(self, running, pending, done, now):
        """No message by the deadline: the late items timed out (the host is killed with them)."""
        late = [
            i for i, t in running.items() if now - t > self._limit(i) + self.grace(self._limit(i))
        ]
        self.close()
        if not late:  # nothing running, nothing sent: the host is stuck
            self._fail_all(pending, done, "not run: the host stopped responding")
            return
        for i in late:
            done(
                i,
                _timed_out(
                    self.items[i],
                    now - running[i],
                    " (the worker did not stop at its deadline; the gate killed it)",
                ),
            )

    def _on_broken(self, msg, running, pending, done, now):
        """The host ended (msg None) or broke the protocol: what it was running goes down with
        it."""
        if msg is None:
            why = (
                f"the host process ended (exit code {self._died()}) while this ran: an obligation "
                "must not end its process (sys.exit/os._exit with --jobs 0, a signal, out of "
                "memory)"
            )
        else:
            self.close()
            why = f"the host sent an unexpected message ({_cap(repr(msg[:2]), 200)})"
        for i, t in running.items():
            done(i, _crashed(self.items[i], why, now - t))
        if not running:  # nothing to blame: stop rather than start host after host
            self._fail_all(pending, done, f"not run: {why}")
