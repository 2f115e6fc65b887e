"""``--metrics-port N``: Prometheus metrics and health probes, named as DeepStream 9.x's REST server does.

DeepStream (``nvds_rest_server`` + ``prometheus_client.cpp``) exposes gauge families labelled
``app_name="ds"`` whose ``metric_name`` label names the figure; we serve the same series so existing
Grafana boards and alerts keep working::

    fps_metrics{app_name="ds",metric_name="stream_fps",sensor_id="",sensor_name="",source_id="0"} 29.9
    latency_metrics{...,metric_name="stream_latency_ms",...}      frame_number_metrics{...stream_frame_number...}
    stream_count{app_name="ds",metric_name="stream_count"}        memory_metrics / utilization_metrics (system)

plus dsrun's own counters (``dsrun_frames_decoded_total``, ``dsrun_frames_processed_total``,
``dsrun_frames_dropped_total``, ``dsrun_source_reconnects_total``, ``dsrun_source_state``,
``dsrun_stage_ms_per_frame``, ``dsrun_stage_queue_depth``, ``dsrun_engine_state``, ``dsrun_paused``).

Endpoints (GET): ``/metrics`` (Prometheus text); ``/api/v1/metrics`` (DeepStream's JSON, or the
Prometheus text when ``Accept`` has ``text/plain``, as DeepStream decides); ``/live``, ``/ready``,
``/startup`` and their ``/api/v1/`` forms (DeepStream's JSON, or a Prometheus gauge for
``Accept: text/plain``). Live: the run is going. Ready and startup: some source is playing or paused
(DeepStream: the pipeline is PLAYING or PAUSED). Unlike DeepStream, which answers 200 with "NO", a
"NO" is answered with 503 so Kubernetes probes can use the status. Like DeepStream's server, it
listens on all interfaces unless told otherwise.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from runner.errors import DsrunError
from runner.ui.view import RunView, Sampler

DEFAULT_HOST = "0.0.0.0"  # DeepStream's civetweb listens on all interfaces
TEXT = "text/plain; version=0.0.4; charset=utf-8"
DS = {"app_name": "ds"}


class MetricsError(DsrunError):
    exit_code = 2


def _family(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=["app_name", "metric_name", *labels])


class SystemStats:
    """Host CPU utilisation (since the previous read) and RAM in use, from /proc (Linux)."""

    def __init__(self) -> None:
        self._last = self._cpu_times()

    @staticmethod
    def _cpu_times() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle

    def cpu_util(self) -> float:
        now, last = self._cpu_times(), self._last
        self._last = now
        if now is None or last is None or now[0] <= last[0]:
            return 0.0
        total, idle = now[0] - last[0], now[1] - last[1]
        return 100.0 * (total - idle) / total

    @staticmethod
    def ram_gb() -> float:
        try:
            with open("/proc/meminfo") as f:
                info = {line.split(":")[0]: int(line.split()[1]) for line in f}
            return (info["MemTotal"] - info["MemAvailable"]) / 2**20
        except (OSError, KeyError, ValueError, IndexError):
            return 0.0


class Exporter:
    """Builds the metrics from the sampler's latest RunView (what the dashboard shows)."""

    def __init__(self, sampler: Sampler, sensors: dict[int, tuple[str, str]] | None = None) -> None:
        self.sampler = sampler
        # source id -> (sensor id, sensor name), from [source-list]; the caller may keep adding to it
        self.sensors = sensors if sensors is not None else {}
        self.system = SystemStats()
        self._lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def view(self) -> RunView:
        return self.sampler.latest or self.sampler.sample()

    def describe(self):
        return []

    def collect(self):
        view = self.view()
        labels = ["sensor_id", "sensor_name", "source_id"]
        fps = _family("fps_metrics", "Frames per second per source", labels)
        latency = _family("latency_metrics", "Latency per source, streammux to pipeline end", labels)
        number = _family("frame_number_metrics", "Frames that left the pipeline per source", labels)
        for s in view.sources:
            sensor_id, sensor_name = self.sensors.get(s.source_id, ("", ""))
            ids = [sensor_id, sensor_name, str(s.source_id)]
            fps.add_metric(["ds", "stream_fps", *ids], s.fps)
            latency.add_metric(["ds", "stream_latency_ms", *ids], s.latency_ms or 0.0)
            number.add_metric(["ds", "stream_frame_number", *ids], s.frames)
        count = _family("stream_count", "Sources in the run", [])
        count.add_metric(["ds", "stream_count"], len(view.sources))
        with self._lock:
            cpu, ram = self.system.cpu_util(), self.system.ram_gb()
        memory = _family("memory_metrics", "Memory in use", [])
        memory.add_metric(["ds", "system_ram_memory_gb"], ram)
        util = _family("utilization_metrics", "Utilisation percent", [])
        util.add_metric(["ds", "system_cpu_utilization"], cpu)
        if view.gpus:
            memory.add_metric(["ds", "system_gpu_memory_gb"], sum(g.memory_used_gb for g in view.gpus))
            util.add_metric(["ds", "system_gpu_utilization"],
                            sum(g.utilization_pct for g in view.gpus) / len(view.gpus))
        yield from (fps, latency, number, count, memory, util)
        yield from self._own(view)

    @staticmethod
    def _own(view: RunView):
        counters = {
            "decoded": CounterMetricFamily("dsrun_frames_decoded", "Frames decoded", labels=["source_id"]),
            "frames": CounterMetricFamily("dsrun_frames_processed", "Frames that left the pipeline",
                                          labels=["source_id"]),
            "dropped": CounterMetricFamily("dsrun_frames_dropped", "Frames dropped", labels=["source_id"]),
            "reconnects": CounterMetricFamily("dsrun_source_reconnects", "Source reconnections",
                                              labels=["source_id"]),
        }
        state = GaugeMetricFamily("dsrun_source_state", "1 for the source's current state",
                                  labels=["source_id", "state"])
        for s in view.sources:
            for field, family in counters.items():
                family.add_metric([str(s.source_id)], getattr(s, field))
            state.add_metric([str(s.source_id), s.state], 1)
        yield from counters.values()
        yield state
        ms = GaugeMetricFamily("dsrun_stage_ms_per_frame", "Stage busy time per frame", labels=["stage"])
        depth = GaugeMetricFamily("dsrun_stage_queue_depth", "Batches waiting for the stage", labels=["stage"])
        for st in view.stages:
            ms.add_metric([st.name], st.ms_per_frame)
            depth.add_metric([st.name], st.queue_depth)
        yield ms
        yield depth
        engines = GaugeMetricFamily("dsrun_engine_state", "1 for the engine's state", labels=["engine", "state"])
        for name, st in view.engines:
            engines.add_metric([name, st], 1)
        yield engines
        yield GaugeMetricFamily("dsrun_paused", "1 while the run is paused", value=int(view.paused))
        yield from Exporter._analytics(view)

    @staticmethod
    def _analytics(view: RunView):
        """[nvds-analytics] counts (cumulative crossings per line, objects per ROI) and broker sinks."""
        lines = CounterMetricFamily("dsrun_analytics_line_crossings", "Objects that crossed each nvdsanalytics "
                                    "line since the start", labels=["source_id", "line"])
        roi = GaugeMetricFamily("dsrun_analytics_roi_objects", "Objects in each nvdsanalytics ROI (latest frame)",
                                labels=["source_id", "roi"])
        crowded = GaugeMetricFamily("dsrun_analytics_overcrowded", "1 while an overcrowding ROI is over its "
                                    "object-threshold", labels=["source_id", "roi"])
        for sid, a in sorted(view.analytics.items()):
            for label, total in a.get("lines", {}).items():
                lines.add_metric([str(sid), label], total)
            for label, count in a.get("roi", {}).items():
                roi.add_metric([str(sid), label], count)
            for label, oc in a.get("overcrowding", {}).items():
                roi.add_metric([str(sid), label], oc["count"])
                crowded.add_metric([str(sid), label], int(oc["crowded"]))
        yield from (lines, roi, crowded)
        sent = CounterMetricFamily("dsrun_broker_messages_sent", "Payloads a broker took", labels=["sink", "protocol"])
        dropped = CounterMetricFamily("dsrun_broker_messages_dropped", "Payloads dropped by the buffer bound "
                                      "while the broker was away", labels=["sink", "protocol"])
        queued = GaugeMetricFamily("dsrun_broker_messages_queued", "Payloads waiting for the broker",
                                   labels=["sink", "protocol"])
        up = GaugeMetricFamily("dsrun_broker_connected", "1 while the sink is connected to its broker",
                               labels=["sink", "protocol"])
        for name, b in sorted(view.brokers.items()):
            ids = [name, str(b.get("protocol", ""))]
            sent.add_metric(ids, b.get("sent", 0))
            dropped.add_metric(ids, b.get("dropped", 0))
            queued.add_metric(ids, b.get("queued", 0))
            up.add_metric(ids, int(b.get("state") == "connected"))
        yield from (sent, dropped, queued, up)

    def json_metrics(self) -> dict:
        """DeepStream's ``/api/v1/metrics`` JSON document."""
        view = self.view()
        stats = []
        for s in view.sources:
            sensor_id, sensor_name = self.sensors.get(s.source_id, ("", ""))
            stats.append({"fps": s.fps, "frame_number": s.frames, "latency_ms": s.latency_ms or 0.0,
                          "sensor_id": sensor_id, "sensor_name": sensor_name, "source_id": s.source_id})
        with self._lock:
            system = {"GPU_gb": sum(g.memory_used_gb for g in view.gpus), "RAM_gb": self.system.ram_gb(),
                      "cpu_util": self.system.cpu_util(),
                      "gpu_util": (sum(g.utilization_pct for g in view.gpus) / len(view.gpus)
                                   if view.gpus else 0.0)}
        return {"metrics-info": {"stream-count": len(stats), "stream-stats": stats, "system-stats": system},
                "reason": "GET_METRICS_INFO_SUCCESS", "status": "HTTP/1.1 200 OK"}


_PROBES = {"live": ("live-info", "ds-liveness", "GET_LIVE_INFO_SUCCESS", "live_metrics"),
           "ready": ("ready-info", "ds-ready", "GET_READY_INFO_SUCCESS", "ready_metrics"),
           "startup": ("startup-info", "ds-startup", "GET_STARTUP_INFO_SUCCESS", "startup_metrics")}


class MetricsServer:
    """A small threaded HTTP server; ``port=0`` picks a free port (see ``.port``)."""

    def __init__(self, exporter: Exporter, port: int, host: str = DEFAULT_HOST, routes=None) -> None:
        self.exporter = exporter
        # more routes served first (the REST API, runner.rest.api.RestApi): an object whose
        # ``handle(method, path, body)`` returns (status, content type, bytes), or None for "not mine"
        self.routes = routes
        self.running = True
        handler = type("Handler", (_Handler,), {"server_ref": self})
        try:
            self._httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as error:
            flag = "--rest-port" if routes is not None else "--metrics-port"
            raise MetricsError(f"{flag} {port}: cannot listen on {host}:{port} ({error.strerror}) "
                               f"— choose a free port, e.g. {flag} {port + 1}") from None
        self._httpd.daemon_threads = True
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="dsrun-metrics",
                                        kwargs={"poll_interval": 0.2}, daemon=True)

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.running = False
        self._httpd.shutdown()
        self._httpd.server_close()

    def probe(self, kind: str) -> bool:
        if kind == "live":
            return self.running
        return self.exporter.view().ready


class _Handler(BaseHTTPRequestHandler):
    server_ref: MetricsServer
    server_version = "dsrun"

    def _routed(self, method: str) -> bool:
        """Let the extra routes (REST API) answer; True when they did."""
        routes = self.server_ref.routes
        if routes is None:
            return False
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            answer = routes.handle(method, self.path, body)
        except Exception as error:  # a bug in a route must not take the run down
            answer = (500, "application/json", json.dumps(
                {"reason": f"{type(error).__name__}: {error}", "status": "HTTP/1.1 500 Internal Server Error"}
            ).encode())
        if answer is None:
            return False
        self._send(*answer)
        return True

    def do_POST(self) -> None:  # noqa: N802
        if not self._routed("POST"):
            self._json(404, {"reason": "NOT_FOUND", "status": "HTTP/1.1 404 Not Found"})

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        text = "text/plain" in self.headers.get("Accept", "")
        exporter = self.server_ref.exporter
        if self._routed("GET"):
            return
        try:
            if path == "/api/v1/health/get-dsready-state":  # DeepStream's older readiness route
                ok = self.server_ref.probe("ready")
                self._json(200, {"health-info": {"ds-ready": "YES" if ok else "NO"},
                                 "reason": "GET_READY_INFO_SUCCESS", "status": "HTTP/1.1 200 OK"})
            elif path == "/metrics" or (path == "/api/v1/metrics" and text):
                self._send(200, TEXT, generate_latest(exporter.registry))
            elif path == "/api/v1/metrics":
                self._json(200, exporter.json_metrics())
            elif path.removeprefix("/api/v1") in ("/live", "/ready", "/startup"):
                self._probe(path.rsplit("/", 1)[-1], text)
            else:
                self._json(404, {"reason": "NOT_FOUND", "status": "HTTP/1.1 404 Not Found",
                                 "endpoints": ["/metrics", "/api/v1/metrics", "/api/v1/live",
                                               "/api/v1/ready", "/api/v1/startup"]})
        except Exception as error:  # never take the run down for a scrape
            self._json(500, {"reason": f"{type(error).__name__}: {error}", "status": "HTTP/1.1 500"})

    def _probe(self, kind: str, text: bool) -> None:
        info, key, reason, family = _PROBES[kind]
        ok = self.server_ref.probe(kind)
        status = 200 if ok else 503
        if text:
            body = (f"# HELP {family} 1 when {kind}\n# TYPE {family} gauge\n"
                    f'{family}{{app_name="ds",metric_name="{key.replace("-", "_")}"}} {int(ok)}\n')
            self._send(status, TEXT, body.encode())
        else:
            self._json(status, {info: {key: "YES" if ok else "NO"}, "reason": reason,
                                "status": f"HTTP/1.1 {status} {'OK' if ok else 'Service Unavailable'}"})

    def _json(self, status: int, doc: dict) -> None:
        self._send(status, "application/json", json.dumps(doc, indent=2).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # scrapes are not news
        pass
