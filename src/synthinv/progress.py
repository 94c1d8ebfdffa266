"""One progress bar for long loops (generation, best-of-N scoring, folders of sounds): rich, with a rate."""

from __future__ import annotations

import sys
import time


class progress_bar:
    """`with progress_bar(total, label) as advance: ... advance(n)`: a rich bar with items/s and an ETA.

    `enabled` None (default): shown only when stderr is a terminal, so logs and tests stay clean."""

    def __init__(self, total: int, label: str, enabled: bool | None = None, unit: str = "ex"):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.label, self.unit = total, label, unit

    def __enter__(self):
        if not self.enabled or self.total == 0:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn(f"{{task.fields[rate]}} {self.unit}/s"), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), transient=False)
        self.bar.start()
        from rich.markup import escape

        # labels hold user paths; rich would take "[bold]x" in a folder name for markup
        self.task = self.bar.add_task(escape(self.label), total=self.total, rate="-")
        self.t0 = time.perf_counter()
        self.count = 0

        def advance(n: int) -> None:
            self.count += n
            rate = self.count / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update(self.task, advance=n, rate=f"{rate:.1f}" if rate < 10 else f"{rate:.0f}")

        return advance

    def __exit__(self, *exc):
        if self.enabled and self.total:
            self.bar.stop()
        return False


class search_progress:
    """`with search_progress(budget_s, start, enabled) as on_best: ... on_best(distance, renders)`: a bar over
    the time budget showing the best distance so far and the renders done (terminals only by default)."""

    def __init__(self, budget: float, start: float, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.budget, self.start = budget, start

    def __enter__(self):
        if not self.enabled:
            return lambda best, renders: None
        from rich.progress import BarColumn, Progress, TextColumn

        self.bar = Progress(TextColumn("searching"), BarColumn(), TextColumn("{task.fields[status]}"), transient=False)
        self.bar.start()
        self.task = self.bar.add_task("search", total=self.budget, status="")

        def on_best(best: float, renders: int) -> None:
            elapsed = time.perf_counter() - self.start
            self.bar.update(self.task, completed=min(elapsed, self.budget),
                            status=f"best {best:.2f}  {renders} renders  {elapsed:.0f}/{self.budget:.0f} s")

        return on_best

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.update(self.task, completed=self.budget)
            self.bar.stop()
        return False
