"""**PERF lines: deepstream-app's format and cadence, driven by real RunStats counters and a scripted
clock (the only thing injected)."""

import io
import re
import time
from types import SimpleNamespace

from runner.pipeline.stats import RunStats
from runner.ui import start_ui
from runner.ui.perf import VALUE_LINE, PerfReporter, PerfSettings

PAIR = re.compile(r"(\d+\.\d+) \((\d+\.\d+)\)")


class Clock:
    def __init__(self):
        self.t = 0.0
        self.step = 0  # next 0.1 s step drive() runs

    def __call__(self):
        return self.t


def reporter(sources, interval_s):
    """A PerfReporter on a real RunStats with ``sources`` registered, under a scripted clock."""
    clock = Clock()
    stats = RunStats(clock=clock)
    for sid in range(sources):
        stats.add_source(sid, f"file:///{sid}.mp4")
    out = io.StringIO()
    return stats, PerfReporter(stats, interval_s=interval_s, stream=out), clock, out


def drive(stats, perf, clock, until, rates, events=None):
    """Steps of 0.1 s up to ``until`` (exclusive). At each step: apply the scheduled event, tick the
    reporter, then let each source in ``rates`` ({source id: (first step time, frames per step)})
    output its frames."""
    events = events or {}
    step = clock.step
    while step < round(until * 10):
        clock.t = step / 10
        if step in events:
            events[step](stats)
        perf.tick()
        if not stats.paused:
            for sid, (begin, per_step) in rates.items():
                if clock.t >= begin:
                    stats.frames_processed([sid] * per_step)
        step += 1
    clock.step = step


def test_two_sources_print_deepstream_apps_header_and_exact_interval_and_average_fps():
    stats, perf, clock, out = reporter(2, interval_s=5)
    # source 0: 3 frames every 0.1 s from t=1.0; source 1: 1 frame every 0.1 s from t=2.0
    drive(stats, perf, clock, 10.1, {0: (1.0, 3), 1: (2.0, 1)})
    # t=5: source 0 output 40 steps x 3 = 120 frames, the first only starts its clock (at t=1.0):
    #      119 / 5 s = 23.80 in the interval, 119 / 4.0 s = 29.75 on average;
    #      source 1: 30 frames from t=2.0: 29 / 5 = 5.80, 29 / 3.0 = 9.67
    # t=10: source 0 +150: 150 / 5 = 30.00, 269 / 9.0 = 29.89; source 1 +50: 10.00, 79 / 8.0 = 9.875
    assert out.getvalue() == (
        "\n**PERF:  FPS 0 (Avg)\tFPS 1 (Avg)\t\n"
        "**PERF:  23.80 (29.75)\t5.80 (9.67)\t\n"
        f"**PERF:  30.00 (29.89)\t10.00 ({79 / 8:.2f})\t\n"
    )


def test_pause_prints_nothing_and_average_excludes_the_paused_time():
    stats, perf, clock, out = reporter(1, interval_s=5)

    def pause(s):
        s.paused = True

    def resume(s):
        s.paused = False

    # 3 frames per step from t=1.0; paused at t=10.5 (last frames at t=10.4), resumed at t=20.0
    drive(stats, perf, clock, 25.1, {0: (1.0, 3)}, {105: pause, 200: resume})
    lines = out.getvalue().splitlines()
    assert lines[0] == "" and lines[1] == "**PERF:  FPS 0 (Avg)\t"
    # no line at t=15 or t=20 (paused); the next one comes one interval after the resume (t=25)
    assert lines[2:] == ["**PERF:  23.80 (29.75)\t", "**PERF:  30.00 (29.89)\t",
                         # measured: 10.4 - 1.0 = 9.4 s before the pause + 5 s after; counted
                         # 119 + 150 + 15 (t=10.0..10.4) + 150 = 434 -> 434 / 14.4 = 30.14
                         "**PERF:  30.00 (30.14)\t"]


def test_header_repeats_every_20_lines_and_when_a_source_is_added():
    stats, perf, clock, out = reporter(1, interval_s=1)
    drive(stats, perf, clock, 21.1, {0: (0.0, 1)})  # 21 lines
    stats.add_source(1, "rtsp://cam/1")  # registers late, never outputs a frame
    drive(stats, perf, clock, 22.1, {0: (0.0, 1)})
    lines = out.getvalue().split("\n")
    headers = [i for i, line in enumerate(lines) if "FPS" in line]
    assert [lines[i] for i in headers] == ["**PERF:  FPS 0 (Avg)\t"] * 2 + ["**PERF:  FPS 0 (Avg)\tFPS 1 (Avg)\t"]
    values = [line for line in lines if VALUE_LINE.fullmatch(line)]
    assert len(values) == 22
    assert headers[1] - headers[0] == 22  # 20 value lines + the blank line + the header
    # t=1: frames at t=0.0..0.9; the first only starts the clock: 9 / 1 s, 9 / 1.0 s
    assert values[0] == "**PERF:  9.00 (9.00)\t"
    # t=22: frames t=0.1..21.9 counted (219) over 22.0 s; source 1 has no frame: 0.00 (0.00)
    assert values[-1] == f"**PERF:  10.00 ({219 / 22:.2f})\t0.00 (0.00)\t"


def test_every_line_parses_with_the_regex_deepstream_app_users_grep_with():
    stats, perf, clock, out = reporter(4, interval_s=5)
    drive(stats, perf, clock, 15.1, {0: (0.0, 3), 1: (0.0, 2), 2: (1.0, 1)})
    values = [line for line in out.getvalue().splitlines() if line.startswith("**PERF:  ") and "FPS" not in line]
    assert len(values) == 3
    for line in values:
        match = VALUE_LINE.match(line)
        assert match, line
        figures = [(float(a), float(b)) for a, b in PAIR.findall(match.group(1))]
        assert len(figures) == 4
    assert [f for f, _ in (map(float, p) for p in PAIR.findall(values[-1]))] == [30.0, 20.0, 10.0, 0.0]


def write_config(folder, application):
    (folder / "a.mp4").write_bytes(b"")
    path = folder / "app.txt"
    path.write_text(f"[application]\n{application}\n[source0]\nenable=1\ntype=3\nuri=file://a.mp4\n"
                    "[streammux]\nbatch-size=1\nwidth=640\nheight=480\n[sink0]\nenable=1\ntype=1\n")
    return path


def test_settings_come_from_the_config_file_and_default_like_deepstream_app(tmp_path):
    from runner.config import load_app

    on = load_app(write_config(tmp_path, "enable-perf-measurement=1\nperf-measurement-interval-sec=2"))
    assert PerfSettings.from_config(on) == PerfSettings(True, 2.0)
    # deepstream-app prints no **PERF without enable-perf-measurement=1; an interval of 0 means 5 s
    off = load_app(write_config(tmp_path, "gie-kitti-output-dir=out"))
    assert PerfSettings.from_config(off).enabled is False
    zero = load_app(write_config(tmp_path, "enable-perf-measurement=1\nperf-measurement-interval-sec=0"))
    assert PerfSettings.from_config(zero) == PerfSettings(True, 5.0)


def test_start_ui_prints_perf_lines_on_a_pipe_at_the_configured_interval_and_none_when_disabled():
    stats = RunStats()
    stats.add_source(0, "file:///a.mp4")
    out = io.StringIO()
    app = SimpleNamespace(enable_perf_measurement=1, perf_measurement_interval_sec=1)
    handle = start_ui(stats, SimpleNamespace(application=app), dashboard=True, stdout=out, stdin=io.StringIO())
    deadline = time.monotonic() + 1.6
    while time.monotonic() < deadline:
        stats.frames_processed([0])
        time.sleep(0.01)
    handle.stop()
    values = [line for line in out.getvalue().splitlines() if VALUE_LINE.match(line)]
    assert len(values) == 1 and out.getvalue().startswith("\n**PERF:  FPS 0 (Avg)\t\n")
    fps, avg = map(float, PAIR.search(values[0]).groups())
    assert 0 < fps <= 101 and 0 < avg <= 101  # at most one frame per 10 ms (exact figures: above)

    quiet = io.StringIO()
    app = SimpleNamespace(enable_perf_measurement=0, perf_measurement_interval_sec=1)
    handle = start_ui(stats, app, dashboard=False, stdout=quiet, stdin=io.StringIO())
    assert handle.perf is None
    handle.stop()
    assert quiet.getvalue() == ""
