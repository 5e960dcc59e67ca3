"""Progress of a fit: a bar per pass and one for the Lloyd iterations.

Drawn by ``tqdm.auto``: a widget in Jupyter (with ipywidgets), a text bar on
a terminal, each with the time left. The passes report blocks as they finish
(:func:`dkmeans.runner.report_progress`); the iterations report through the
fit's ``on_iteration`` hook, with the inertia beside the bar.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from dkmeans.runner import report_progress


class PassBars:
    """One bar per pass over the blocks, replaced when the next pass starts."""

    def __init__(self, file: Any = None, **tqdm_options: Any) -> None:
        from tqdm.auto import tqdm

        self._tqdm, self._file, self._options = tqdm, file, tqdm_options
        self._bar: Any = None
        self._name: str | None = None

    def __call__(self, name: str, done: int, total: int) -> None:
        if self._bar is None or name != self._name or done < self._bar.n:
            self.close()
            self._bar = self._tqdm(total=total, desc=name.removeprefix("dkmeans-"),
                                   unit="block", leave=False, file=self._file,
                                   **self._options)
            self._name = name
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """End the current bar at 100%: its pass is over when the next one
        starts or the fit ends (folds report as they finish, not per block)."""
        if self._bar is not None:
            self._bar.update(self._bar.total - self._bar.n)
            self._bar.close()
            self._bar = None


@contextlib.contextmanager
def show_progress(enabled: bool, max_iter: int | None = None, file: Any = None,
                  ) -> Iterator[Callable[[Any], None] | None]:
    """Show bars while the block runs; yield the ``on_iteration`` hook that
    advances the iteration bar (None when disabled or without iterations)."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    passes = PassBars(file)
    iterations = (tqdm(total=max_iter, desc="Lloyd iterations", unit="iter", file=file)
                  if max_iter else None)

    def on_iteration(progress: Any) -> None:
        if iterations is None:
            return
        iterations.update(progress.n_iter - iterations.n)
        iterations.set_postfix(inertia=f"{progress.inertia:.6g}", refresh=False)
        if progress.converged:
            iterations.total = progress.n_iter  # stopped early: the bar ends here
            iterations.refresh()

    try:
        with report_progress(passes):
            yield on_iteration
    finally:
        passes.close()
        if iterations is not None:
            iterations.close()


def chain(*hooks: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
    """One ``on_iteration`` hook calling each given one in turn."""
    present = [h for h in hooks if h is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def call(progress: Any) -> None:
        for hook in present:
            hook(progress)

    return call
