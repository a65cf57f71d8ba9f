"""Progress bars for every loop of the zoo, one rule for all of them.

:func:`progress` is ``tqdm`` with ``progress_bar=False`` meaning no output at all, and otherwise:

* on a terminal (stderr is a TTY) or in a notebook: tqdm's live bar, as before;
* anywhere else (a log file, a pipe, CI, a captured stream): no carriage-return redraws. A plain
  line (``desc: 35%| 350/1000 [00:10<00:19, loss=123]``) is written every :data:`LOG_INTERVAL`
  seconds, plus a last one when the loop ends if any was written; a loop shorter than the
  interval writes nothing.

:func:`log_mode` says which of the two applies (NUTS uses it to swap Pyro's own bar for a line bar).
"""
from __future__ import annotations

import sys

from tqdm.std import tqdm as _std_tqdm

__all__ = ["progress", "log_mode", "LOG_INTERVAL"]

#: seconds between two lines when stderr is not a terminal
LOG_INTERVAL = 10.0


def _in_notebook() -> bool:
    """Whether ``tqdm.auto`` draws notebook widgets here (an IPython kernel with ipywidgets)."""
    from tqdm.auto import tqdm as auto

    try:
        from tqdm.notebook import tqdm as notebook
    except Exception:  # pragma: no cover - tqdm without its notebook module
        return False
    return issubclass(auto, notebook)


def log_mode(file=None) -> bool:
    """True when progress goes to something that is not a terminal (and not a notebook): lines, not a bar."""
    file = sys.stderr if file is None else file
    try:
        tty = bool(file.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        tty = False
    return not tty and not _in_notebook()


class _LineProgress(_std_tqdm):
    """tqdm for logs: a plain line every ``mininterval`` seconds, never a carriage return."""

    monitor_interval = 0  # no monitor thread: lines come only from updates

    def __init__(self, *args, **kwargs):
        interval = float(LOG_INTERVAL)
        kwargs.setdefault("mininterval", interval)
        kwargs.update(delay=interval, maxinterval=max(interval, kwargs["mininterval"]), leave=False,
                      dynamic_ncols=False, ncols=None, ascii=True)
        self._lines = 0
        super().__init__(*args, **kwargs)

    def refresh(self, nolock=False, lock_args=None):
        # set_postfix / set_description refresh at every call: keep them to the interval too
        now = self._time()
        if now < getattr(self, "start_t", now) + self.delay:
            return False
        if self._lines and now - self.last_print_t < self.mininterval:
            return False
        self.last_print_n, self.last_print_t = self.n, now
        return super().refresh(nolock=nolock, lock_args=lock_args)

    def display(self, msg=None, pos=None):
        if msg == "":  # tqdm clearing its line: nothing to clear
            return False
        self.fp.write((self.__str__() if msg is None else msg) + "\n")
        self.fp.flush()
        self._lines += 1
        return True

    def close(self):
        if not self.disable and self._lines and self.n != self.last_print_n:
            self.display()  # where the loop ended
        super().close()


def progress(iterable=None, *, enabled: bool = True, total=None, desc=None, initial: int = 0, leave: bool = False,
             **kwargs):
    """A progress bar over ``iterable`` (or ``total`` steps updated by hand), following the module's rule:
    nothing when ``enabled`` is false, a live bar on a terminal or in a notebook, a line every
    :data:`LOG_INTERVAL` seconds otherwise. Takes tqdm's other keyword arguments."""
    if not enabled:
        return _std_tqdm(iterable, total=total, desc=desc, initial=initial, disable=True, **kwargs)
    if log_mode(kwargs.get("file")):
        return _LineProgress(iterable, total=total, desc=desc, initial=initial, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, initial=initial, leave=leave, **kwargs)
