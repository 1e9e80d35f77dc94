"""Progress of a long run, where people look: a tqdm bar in a terminal, one flushed line per
milestone in a log.

A run is made of kinds of work with different costs: training steps and probes (`lpcheck estimate`:
a probe costs hundreds of steps), simulation runs of different T (`lpcheck rates`: a run's cost
grows with T). The ETA weights every remaining unit by the measured cost of its kind (seconds per
unit, averaged over the units done so far); a kind not measured yet is priced from a measured one
through the stated prior ratio of their costs; with nothing measured the ETA is unknown ('?'), never
a guess printed as a time.

In a terminal (the stream is a TTY) the bar counts the user's unit (steps, runs) and shows that ETA
in place of tqdm's own, which would count a probe like a step. Otherwise (stderr redirected to a
log) nothing is drawn and `milestone(text)` writes one line 'LABEL: text; elapsed 1:02:03, ETA 4:05'
and flushes it. `quiet` silences both."""

from __future__ import annotations

import math
import sys
import time

__all__ = ["Progress", "clock"]


def clock(seconds) -> str:
    """h:mm:ss (or m:ss) for a duration; '?' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(max(0.0, seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """work: {kind: units still to do}; prior: {kind: relative cost of one unit} (only the ratios
    matter, for kinds not measured yet); bar: the kind the bar counts (its total is work[bar] +
    initial), or bar_total for a bar that counts something else (advance(..., bar=n)). Times are
    wall-clock (time.perf_counter)."""

    def __init__(
        self,
        label,
        work,
        prior=None,
        *,
        bar=None,
        bar_total=None,
        initial=0,
        unit="step",
        stream=None,
        quiet=False,
        timer=time.perf_counter,
    ):
        self.label, self.left = label, {k: float(v) for k, v in work.items()}
        self.prior = dict(prior or {})
        self.spent = {k: 0.0 for k in work}  # measured seconds per kind
        self.done = {k: 0.0 for k in work}  # measured units per kind
        self.bar_kind, self.stream, self.timer = (
            bar,
            stream if stream is not None else sys.stderr,
            timer,
        )
        self.quiet = bool(quiet)
        self.start = self.last = timer()
        self.note_text = ""
        self.bar = None
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if not self.quiet and self.tty:
            from tqdm import tqdm

            total = bar_total if bar_total is not None else self.left.get(bar, 0) + initial
            self.bar = tqdm(
                total=int(total),
                initial=int(initial),
                unit=unit,
                file=self.stream,
                dynamic_ncols=True,
                desc=label,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                "[{elapsed}{postfix}]",
            )
            self._refresh()

    # -- measuring
    # ---------------------------------------------------------------------------------------------
    def advance(self, kind, n=1, seconds=None, bar=None):
        """n units of `kind` done, taking `seconds` (default: the time since the last advance or
        mark)."""
        now = self.timer()
        seconds = now - self.last if seconds is None else float(seconds)
        self.last = now
        self.spent[kind] = self.spent.get(kind, 0.0) + seconds
        self.done[kind] = self.done.get(kind, 0.0) + n
        self.left[kind] = max(0.0, self.left.get(kind, 0.0) - n)
        if self.bar is not None:
            step = bar if bar is not None else (n if kind == self.bar_kind else 0)
            if step:
                self.bar.update(step)
            self._refresh()

    def mark(self):
        """Start timing the next unit now (time spent before it, e.g. writing a report, is not
        charged)."""
        self.last = self.timer()

    def cost(self, kind):
        """Seconds per unit of `kind`: measured, else priced from a measured kind by the prior; None
        if neither."""
        if self.done.get(kind):
            return self.spent[kind] / self.done[kind]
        for other, n in self.done.items():
            if n and self.prior.get(kind) and self.prior.get(other):
                return self.spent[other] / n * self.prior[kind] / self.prior[other]
        return None

    def eta(self):
        """Seconds left by the measured costs; None while some remaining kind has no price yet."""
        total = 0.0
        for kind, left in self.left.items():
            if left <= 0:
                continue
            c = self.cost(kind)
            if c is None:
                return None
            total += left * c
        return total

    def elapsed(self):
        return self.timer() - self.start

    # -- telling
    # ---------------------------------------------------------------------------------------------
    def _refresh(self):
        if self.bar is not None:
            self.bar.set_postfix_str(
                f"ETA {clock(self.eta())}" + (f", {self.note_text}" if self.note_text else ""),
                refresh=True,
            )

    def note(self, text):
        """A short state shown beside the bar (a terminal only)."""
        self.note_text = text
        self._refresh()

    def milestone(self, text):
        """In a log: one flushed line with the elapsed time and the ETA. In a terminal: shown beside
        the bar."""
        if self.quiet:
            return
        if self.bar is not None:
            self.note(text)
            return
        print(
            f"{self.label}: {text}; elapsed {clock(self.elapsed())}, ETA {clock(self.eta())}",
            file=self.stream,
            flush=True,
        )

    # the old interface (lpcheck.training.Progress): one kind, counted by update()
    def update(self, n=1):
        self.advance(self.bar_kind, n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
