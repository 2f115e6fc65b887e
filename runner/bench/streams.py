"""The configs ``dsrun bench`` runs: the user's app config with its sources replicated N times.

:func:`replicate` keeps every group of the config (GIEs, tracker, analytics, OSD, tiler) and changes
only what a capacity test must change: N sources (the config's own, taken in turn, or one ``--clip``),
each played in a loop (``[tests] file-loop``) so no source ends inside the measured window; the
streammux and primary-GIE batch grown with N up to the config's batch (``--batch`` to set it); and,
when asked, the primary GIE's ``interval``.

>>> from runner.config.model import AppConfig, GieConfig, SourceConfig
>>> app = AppConfig(sources=(SourceConfig(enable=True, uri="file:///v/a.mp4"),))
>>> [s.index for s in replicate(app, 3).sources], replicate(app, 3).tests.file_loop
([0, 1, 2], True)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runner.config.enums import SourceType
from runner.config.model import AppConfig, SourceConfig
from runner.errors import DsrunError

DEFAULT_FPS = 30.0  # the target when no source says its rate (a camera, a network stream)


class BenchError(DsrunError):
    """``dsrun bench`` cannot run as asked (exit 2): the message says what to change."""

    exit_code = 2


def config_batch(app: AppConfig) -> int:
    """The largest batch the config asks for: streammux ``batch-size``, else the PGIE's, else the
    number of sources (deepstream-app's rule for an unset streammux batch-size)."""
    pgie = app.primary_gie.nvinfer.batch_size if app.primary_gie is not None else 0
    return max(int(app.streammux.batch_size or 0), int(pgie or 0)) or max(1, len(app.sources))


def replicate(app: AppConfig, n: int, *, clip: str | Path | None = None, batch: int | None = None,
              interval: int | None = None) -> AppConfig:
    """``app`` with ``n`` looping sources and a batch of ``min(n, batch or config_batch(app))``."""
    if clip is not None:
        base = [SourceConfig(enable=True, type=SourceType.URI, uri=Path(clip).resolve().as_uri())]
    else:
        base = list(app.sources)
    if not base:
        raise BenchError(f"{app.path}: the config has no enabled [sourceN] — enable one, or give --clip VIDEO")
    sources = tuple(dataclasses.replace(base[i % len(base)], index=i, num_sources=1, group=f"source{i}")
                    for i in range(n))
    size = max(1, min(n, batch or config_batch(app)))
    changes = dict(sources=sources, tests=dataclasses.replace(app.tests, file_loop=True),
                   streammux=dataclasses.replace(app.streammux, batch_size=size))
    if app.primary_gie is not None:
        nvinfer = dataclasses.replace(app.primary_gie.nvinfer, batch_size=size)
        gie = dataclasses.replace(app.primary_gie, batch_size=size)
        if interval is not None:
            nvinfer = dataclasses.replace(nvinfer, interval=interval)
            gie = dataclasses.replace(gie, interval=interval)
        changes["primary_gie"] = dataclasses.replace(gie, nvinfer=nvinfer)
    elif interval is not None:
        raise BenchError(f"{app.path}: --interval given but the config has no enabled [primary-gie]")
    return dataclasses.replace(app, **changes)


def source_rate(app: AppConfig, clip: str | Path | None = None) -> tuple[float, str]:
    """(frames per second, where the figure comes from) of the first source: its video stream's
    average rate for a file, else :data:`DEFAULT_FPS`."""
    from urllib.parse import unquote, urlparse

    if clip is not None:
        path = Path(clip)
    else:
        uri = str(app.sources[0].uri or "") if app.sources else ""
        parsed = urlparse(uri)
        if parsed.scheme not in ("", "file"):
            return DEFAULT_FPS, f"default ({parsed.scheme} source has no file rate)"
        path = Path(unquote(parsed.path))
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if rate:
                return round(float(rate), 3), f"{path.name} rate"
    except Exception:  # unreadable here: the run itself will name the problem
        pass
    return DEFAULT_FPS, "default (rate unknown)"
