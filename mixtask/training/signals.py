"""SIGINT / SIGTERM: checkpoint and stop after the current step."""

from __future__ import annotations

import contextlib
import signal


class StopFlag:
    """Set by SIGINT / SIGTERM: the loop checkpoints and stops after the current step."""

    def __init__(self):
        self.signal: int | None = None

    def __call__(self, signum, frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum


@contextlib.contextmanager
def stop_on_signals():
    flag = StopFlag()
    if not _is_main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
