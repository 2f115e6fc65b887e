"""The dashboard as a person sees it: ``dsrun`` in a real pseudo-terminal, its screen rebuilt by a
terminal emulator (pyte) and read back — long names, progress and time left, live state, sparklines,
objects per class, the last error in full on ``e``, every key listed, a compact view when narrow."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from pipeline_helpers import make_clip
from rtsp_server import rtsp_server  # noqa: F401  (fixture)

pyte = pytest.importorskip("pyte")

ROOT = Path(__file__).resolve().parents[1]
MULTISTREAM = ROOT / "samples" / "multistream"
SPARK = set("▁▂▃▄▅▆▇█")


class Terminal:
    """``dsrun CONFIG`` on a pty of ``cols`` × ``rows``; ``screen()`` is what a person would see."""

    def __init__(self, config: Path, cols: int, rows: int = 40) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(cols), "LINES": str(rows),
               "TERM": "xterm-256color"}
        self.proc = subprocess.Popen([sys.executable, "-m", "runner", str(config)], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=config.parent, start_new_session=True)
        os.close(slave)
        self.vt = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.vt)
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.stream.feed(data)

    def screen(self) -> list[str]:
        with self._lock:
            return [line.rstrip() for line in self.vt.display]

    def wait_for(self, predicate, timeout: float = 120.0, what: str = "") -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.screen()
            if predicate(lines):
                return lines
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"screen never showed {what}:\n" + "\n".join(self.screen()))

    def press(self, key: bytes) -> None:
        os.write(self.master, key)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        os.close(self.master)


def config(folder: Path, file_uri: str, live_uri: str, broken_uri: str) -> Path:
    path = folder / "app.txt"
    path.write_text(f"""[source0]
enable=1
type=3
uri={file_uri}

[source1]
enable=1
type=4
uri={live_uri}

[source2]
enable=1
type=4
uri={broken_uri}

[streammux]
width=480
height=272
batch-size=2
batched-push-timeout=40000

[primary-gie]
enable=1
gie-unique-id=1
config-file={MULTISTREAM / 'config_infer_primary.txt'}

[sink0]
enable=1
type=1
sync=1
""")
    return path


@pytest.fixture
def scene(tmp_path, rtsp_server):
    deep = tmp_path / ("site-north-entrance-" * 4) / "recordings" / "2026-12-03"
    deep.mkdir(parents=True)
    clip = make_clip(deep / "gate_camera_07_front_door.mp4", frames=750, size=(320, 240), fps=25)
    server = rtsp_server({"live": make_clip(tmp_path / "live.mp4", frames=750, size=(320, 240), fps=25)})
    broken = server.url("no-such-mount-" + "x" * 120)
    return config(tmp_path, clip.as_uri(), server.url("live"), broken), clip


def _line(lines: list[str], start: str) -> str:
    return next((line for line in lines if line.lstrip().startswith(start)), "")


def test_wide_terminal_shows_names_progress_live_state_sparklines_objects_keys_and_errors_in_full(scene):
    cfg, clip = scene
    term = Terminal(cfg, cols=160)
    try:
        # time left shows once the file has a measured rate: wait for it, as for the rest
        lines = term.wait_for(lambda ls: re.search(r"\d+%\s+\d\d:\d\d:\d\d", _line(ls, "0 ")) and
                              SPARK & set(_line(ls, "0 ")) and "objects:" in "\n".join(ls) and
                              "live" in _line(ls, "1 ") and "last error" in "\n".join(ls),
                              what="progress, sparkline, objects, the live source and the error")
        file_line = _line(lines, "0 ")
        # the file's name is kept whole; the middle of its long path is cut
        assert clip.name in file_line and "…/" in file_line
        assert re.search(r"\d+%\s+\d\d:\d\d:\d\d", file_line)  # done and time left
        assert "live" in _line(lines, "1 ")
        screen = "\n".join(lines)
        assert re.search(r"objects: (car|bicycle|person|roadsign) \d+", screen)
        assert "keys: q quit  p pause  r resume  e errors in full  h help" in screen
        error_lines = [line for line in lines if "last error" in line]
        assert error_lines and error_lines[0].endswith("… (e: in full)")  # longer than the terminal
        term.press(b"e")
        full = term.wait_for(lambda ls: "check the path or stream name" in "\n".join(ls),
                             what="the whole error after e")
        assert "(e: in full)" not in "\n".join(full)
        term.press(b"q")
        assert term.proc.wait(60) in (1, 130)  # a source failed (or stopped by q before the end)
    finally:
        term.close()


def test_narrow_terminal_gets_a_compact_view_not_a_broken_one(scene):
    cfg, clip = scene
    term = Terminal(cfg, cols=72)
    try:
        lines = term.wait_for(lambda ls: re.search(r"\d+%", _line(ls, "0 ")) and "live" in _line(ls, "1 "),
                              what="the compact source lines")
        header = next(line for line in lines if line.lstrip().startswith("id "))
        assert header.split() == ["id", "source", "state", "fps", "done"]
        assert "avg fps" not in "\n".join(lines)
        assert clip.name[-20:] in _line(lines, "0 ")  # the end of the file name survives
        term.press(b"q")
        term.proc.wait(60)
    finally:
        term.close()
