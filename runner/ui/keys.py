"""Single-key run control, as deepstream-app has: ``q`` quit, ``p`` pause, ``r`` resume, ``h`` help.

Active only when stdin is a terminal. A thread puts the terminal in cbreak mode (keys arrive without
Enter and are not echoed; Ctrl-C still interrupts), calls the action bound to each key, and restores
the terminal exactly as it found it on ``stop()`` — also if the program exits without calling it.

>>> import os
>>> master, slave = os.openpty()
>>> got = []
>>> reader = KeyReader(slave, {"p": lambda: got.append("pause")}); reader.start()
>>> _ = os.write(master, b"p"); reader.wait_idle(); reader.stop()
>>> got
['pause']
"""

from __future__ import annotations

import atexit
import os
import select
import sys
import termios
import threading
from typing import Callable

HELP = "keys: q quit, p pause, r resume, e last errors in full (dashboard), h this help"


class KeyReader:
    """Reads keys from ``fd`` (a terminal) in its own thread and runs ``actions[key]``."""

    def __init__(self, fd: int, actions: dict[str, Callable[[], object]]) -> None:
        self.fd = fd
        self.actions = actions
        self._saved: list | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="dsrun-keys", daemon=True)
        self._idle = threading.Condition()
        self._pending = 0  # keys read and not yet handled (for wait_idle)

    def start(self) -> None:
        self._saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)  # lflag: no line buffering, no echo; ISIG kept
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
        termios.tcsetattr(self.fd, termios.TCSANOW, mode)
        atexit.register(self._restore)
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=2)
        self._restore()
        atexit.unregister(self._restore)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def wait_idle(self, timeout: float = 2.0) -> None:
        """Wait until every key already typed has been handled (for tests and orderly exits)."""
        with self._idle:
            while True:
                ready, _, _ = select.select([self.fd], [], [], 0)
                if not ready and self._pending == 0:
                    return
                if not self._idle.wait(timeout):
                    return

    def _restore(self) -> None:
        if self._saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            except (termios.error, OSError):
                pass
            self._saved = None

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self.fd, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            with self._idle:
                self._pending += 1
            try:
                try:
                    data = os.read(self.fd, 32)
                except OSError:  # terminal went away
                    return
                if not data:
                    return
                for key in data.decode(errors="ignore").lower():
                    action = self.actions.get(key)
                    if action is not None:
                        try:
                            action()
                        except Exception as error:  # a failing action must not kill key handling
                            print(f"dsrun: key '{key}' failed: {error}", file=sys.stderr)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
