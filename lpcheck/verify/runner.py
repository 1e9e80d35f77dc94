"""Runs obligations and findings, each in its own forked process with a hard timeout.

A forked child starts at once (sympy, z3 and the proof modules are already imported) and can be
killed when its time is up, whatever it is doing (a sympy simplification in pure Python, z3 in C).
Up to `jobs` children run at a time. Where fork is not available the items run one by one in this
process, with SIGALRM as the timeout where there is one.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait

from lpcheck.verify.core import Finding, FindingResult

__all__ = ["run_items", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0


def _timed_out(item, seconds):
    if isinstance(item, Finding):
        return FindingResult(item.id, item.claim, item.verdict, item.section, False, {},
                             f"no witness within {seconds:.0f} s", "timeout", round(seconds, 3), item.module)
    return item.result("timeout", None, [], f"no verdict within {seconds:.0f} s", seconds)


def _crashed(item, why, seconds):
    if isinstance(item, Finding):
        return FindingResult(item.id, item.claim, item.verdict, item.section, False, {}, why, "error",
                             round(seconds, 3), item.module)
    return item.result("error", None, [], why, seconds)


def _child(item, conn):
    if "torch" in sys.modules:  # torch's OpenMP pool does not survive fork: stay single-threaded here
        sys.modules["torch"].set_num_threads(1)
    try:
        conn.send(item.run())
    except BaseException as e:  # noqa: BLE001 - report anything, including pickling problems
        conn.send(("crash", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def _run_forked(items, jobs, timeout, on_result):
    ctx = multiprocessing.get_context("fork")
    results = [None] * len(items)
    queue = list(enumerate(items))
    running = {}  # connection -> (index, process, start, limit)
    while queue or running:
        while queue and len(running) < jobs:
            i, item = queue.pop(0)
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(item, child), daemon=True)
            proc.start()
            child.close()
            running[parent] = (i, proc, time.perf_counter(), item.timeout or timeout)
        now = time.perf_counter()
        next_deadline = min(start + limit for _, _, start, limit in running.values())
        for conn in wait(list(running), timeout=max(0.0, next_deadline - now)):
            i, proc, start, _ = running.pop(conn)
            try:
                out = conn.recv()
            except EOFError:
                out = ("crash", f"the worker died (exit code {proc.exitcode})")
            proc.join()
            conn.close()
            results[i] = _crashed(items[i], out[1], time.perf_counter() - start) if isinstance(out, tuple) else out
            on_result(results[i])
        now = time.perf_counter()
        for conn, (i, proc, start, limit) in list(running.items()):
            if now - start > limit:
                proc.kill()
                proc.join()
                conn.close()
                del running[conn]
                results[i] = _timed_out(items[i], now - start)
                on_result(results[i])
    return results


class _Alarm(BaseException):  # not an Exception: obligations catch those
    pass


def _run_inline(items, timeout, on_result):
    results = []
    use_alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    for item in items:
        limit = item.timeout or timeout
        start = time.perf_counter()
        if use_alarm:
            def _raise(signum, frame):
                raise _Alarm()
            old = signal.signal(signal.SIGALRM, _raise)
            signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            res = item.run()
        except _Alarm:
            res = _timed_out(item, time.perf_counter() - start)
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
        results.append(res)
        on_result(res)
    return results


def run_items(items, *, jobs=None, timeout=DEFAULT_TIMEOUT, on_result=None):
    """Run obligations/findings; results come back in the items' order. `on_result` sees each as it ends."""
    on_result = on_result or (lambda r: None)
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs >= 1 and "fork" in multiprocessing.get_all_start_methods():
        return _run_forked(list(items), jobs, timeout, on_result)
    return _run_inline(list(items), timeout, on_result)
