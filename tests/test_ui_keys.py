"""Keys q/p/r through a real pseudo-terminal: single keys without Enter, terminal restored on exit."""

import io
import os
import termios

from runner.pipeline.stats import RunStats
from runner.ui import start_ui


def test_p_r_q_call_pause_resume_quit_and_the_terminal_is_restored():
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON and before[3] & termios.ECHO
    stdin = os.fdopen(slave, "rb", buffering=0)
    stats = RunStats()
    stats.add_source(0, "file:///a.mp4")
    calls = []

    def pause():
        calls.append("pause")
        stats.paused = True

    def resume():
        calls.append("resume")
        stats.paused = False

    handle = start_ui(stats, None, dashboard=True, stdout=io.StringIO(), stdin=stdin,
                      on_quit=lambda: calls.append("quit"), on_pause=pause, on_resume=resume)
    try:
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON and not during[3] & termios.ECHO  # cbreak, no echo
        assert during[3] & termios.ISIG  # Ctrl-C still interrupts

        os.write(master, b"p")  # no Enter needed
        handle.keys.wait_idle()
        assert calls == ["pause"] and stats.paused
        os.write(master, b"x")  # unbound keys are ignored
        os.write(master, b"rQ")
        handle.keys.wait_idle()
        assert calls == ["pause", "resume", "quit"] and not stats.paused
    finally:
        handle.stop()
    assert termios.tcgetattr(slave) == before
    stdin.close()
    os.close(master)


def test_no_key_thread_when_stdin_is_not_a_terminal():
    handle = start_ui(RunStats(), None, dashboard=False, stdout=io.StringIO(), stdin=io.StringIO(),
                      on_quit=lambda: None)
    assert handle.keys is None
    handle.stop()
