"""Runs obligations and findings, each in its own forked process with a hard timeout.

A forked child starts at once (sympy, z3 and the proof modules are already imported) and can be
killed when its time is up, whatever it is doing (a sympy simplification in pure Python, z3 in C).
Up to `jobs` children run at a time. Every child dies with its parent (PR_SET_PDEATHSIG on Linux, a
watch on the parent's pid elsewhere), so a killed gate leaves no worker behind.

`jobs=0` runs the items one after another in this process with SIGALRM as the timeout: it cannot
stop code that swallows every exception, so an item that overruns its time is a timeout whatever it
returns, and the gate (host.py) only uses this mode inside a host process it watches and can kill.
Where fork is not available the items run that way too."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait

from lpcheck.verify.core import Finding, FindingResult

__all__ = ["run_items", "DEFAULT_TIMEOUT", "fork", "reap", "has_fork", "limit_of"]

DEFAULT_TIMEOUT = 60.0
# the gate waits with poll(), whose timeout is an int of milliseconds (2^31 - 1 ms, 24.8 days), and
# adds a grace of 10 % to each item's time: past 1e6 s (11.6 days) the wait itself would overflow
TIMEOUT_MAX = 1e6
_PR_SET_PDEATHSIG = 1


def has_fork() -> bool:
    return hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods()


def _die_with_parent(parent_pid):
    """Make this (forked) process die when its parent does, whatever kills the parent."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch():  # elsewhere: poll the parent's pid (a reparented child sees a new parent)
        while os.getppid() == parent_pid:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def fork(target, *args, own_group=False, close=()):
    """Run target(conn, *args) in a forked child; returns (pid, conn), a duplex pipe to the child.

    The child dies with this process, restores the default SIGINT/SIGTERM actions, closes the
    connections in `close` (a worker must not hold its parent's pipe to the gate, or the gate would
    not see its parent die), and never returns into the caller's stack: it ends with os._exit.
    With own_group the child leads a new process group, so killpg ends it and all its children.
    """
    parent_conn, child_conn = multiprocessing.Pipe(duplex=True)
    parent_pid = os.getpid()
    for stream in (sys.stdout, sys.stderr):  # a buffered line must not be written twice
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child (covered through its results)
        code = 70
        try:
            parent_conn.close()
            for c in close:
                try:
                    c.close()
                except OSError:
                    pass
            if own_group:
                os.setpgid(0, 0)
            _die_with_parent(parent_pid)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            target(child_conn, *args)
            code = 0
        except BaseException:  # noqa: BLE001 - whatever happened, leave through os._exit below
            code = 70
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except BaseException:  # noqa: BLE001
                    pass
            os._exit(code)
    child_conn.close()
    if own_group:
        try:
            os.setpgid(pid, pid)  # also here, so a killpg right after fork cannot miss
        except OSError:
            pass
    return pid, parent_conn


def reap(pid, kill=False, group=False) -> int | None:
    """Kill (optionally) and wait for a child; its exit code (negative: the signal), None if
    unknown."""
    if kill:
        for send in (os.killpg, os.kill) if group else (os.kill,):
            try:
                send(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    try:
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        return None


def limit_of(item, timeout) -> float:
    """An item's time: its own `timeout` where it asks for less than the run's, the run's otherwise
    (a module cannot extend the budget the command line sets)."""
    return min(item.timeout, timeout) if item.timeout else timeout


def _timed_out(item, seconds, why=""):
    if isinstance(item, Finding):
        return FindingResult(
            item.id,
            item.claim,
            item.verdict,
            item.section,
            False,
            {},
            f"no witness within {seconds:.0f} s{why}",
            "timeout",
            round(seconds, 3),
            item.module,
        )
    return item.result("timeout", None, [], f"no verdict within {seconds:.0f} s{why}", seconds)


def _crashed(item, why, seconds):
    if isinstance(item, Finding):
        return FindingResult(
            item.id,
            item.claim,
            item.verdict,
            item.section,
            False,
            {},
            why,
            "error",
            round(seconds, 3),
            item.module,
        )
    return item.result("error", None, [], why, seconds)


def _child(conn, item):
    if (
        "torch" in sys.modules
    ):  # torch's OpenMP pool does not survive fork: stay single-threaded here
        sys.modules["torch"].set_num_threads(1)
    try:
        conn.send(item.run())
    except BaseException as e:  # noqa: BLE001 - report anything, including pickling problems
        conn.send(("crash", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def _run_forked(items, jobs, timeout, on_result, on_start=None, close=()):
    results = [None] * len(items)
    queue = list(enumerate(items))
    running = {}  # connection -> (index, pid, start, limit)
    while queue or running:
        while queue and len(running) < jobs:
            i, item = queue.pop(0)
            if on_start:
                on_start(i)
            pid, conn = fork(_child, item, close=close)
            running[conn] = (i, pid, time.perf_counter(), limit_of(item, timeout))
        now = time.perf_counter()
        next_deadline = min(start + limit for _, _, start, limit in running.values())
        for conn in wait(list(running), timeout=max(0.0, next_deadline - now)):
            i, pid, start, _ = running.pop(conn)
            try:
                out = conn.recv()
            except (EOFError, OSError):
                out = None
            conn.close()
            code = reap(pid, kill=out is None)
            if out is None:
                out = (
                    "crash",
                    (
                        f"the worker died without a verdict (exit code {code}): an obligation must "
                        "not end its process (os._exit, a signal, running out of memory)"
                    ),
                )
            results[i] = (
                _crashed(items[i], out[1], time.perf_counter() - start)
                if isinstance(out, tuple)
                else out
            )
            on_result(i, results[i])
        now = time.perf_counter()
        for conn, (i, pid, start, limit) in list(running.items()):
            if now - start > limit:
                reap(pid, kill=True)
                conn.close()
                del running[conn]
                results[i] = _timed_out(items[i], now - start)
                on_result(i, results[i])
    return results


class _Alarm(BaseException):  # not an Exception: obligations catch those
    pass


def _run_inline(items, timeout, on_result, on_start=None):
    results = []
    use_alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    for i, item in enumerate(items):
        if on_start:
            on_start(i)
        limit = limit_of(item, timeout)
        start = time.perf_counter()
        if use_alarm:

            def _raise(signum, frame):
                raise _Alarm()

            old = signal.signal(signal.SIGALRM, _raise)
            signal.setitimer(signal.ITIMER_REAL, limit, 0.5)  # and again every 0.5 s if swallowed
        try:
            res = item.run()
        except _Alarm:
            res = None
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
        seconds = time.perf_counter() - start
        if res is None or seconds > limit:  # an overrun is a timeout, whatever the item returned
            swallowed = " (it overran its time and then returned: the timeout was swallowed)"
            res = _timed_out(item, seconds, "" if res is None else swallowed)
        results.append(res)
        on_result(i, res)
    return results


def run_items(items, *, jobs=None, timeout=DEFAULT_TIMEOUT, on_result=None):
    """Run obligations/findings already imported in this process; results come back in the items'
    order.

    `on_result` sees each as it ends. The gate itself uses host.Host, which also keeps the modules'
    own code (imports included) out of the gate's process.
    """
    callback = on_result or (lambda r: None)
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs >= 1 and has_fork():
        return _run_forked(list(items), jobs, timeout, lambda i, r: callback(r))
    return _run_inline(list(items), timeout, lambda i, r: callback(r))
