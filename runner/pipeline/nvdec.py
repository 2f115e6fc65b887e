"""GPU decode (NVDEC) through PyNvVideoCodec: decoded frames stay in GPU memory as torch tensors.

:class:`NvdecReader` is a drop-in for :class:`~runner.pipeline.source.SourceReader` on local H.264 /
H.265 files: the same thread, statistics, EOS and typed errors, but the decoder is the GPU's video
engine and each frame is handed to streammux as an (H, W, 3) uint8 RGB CUDA tensor (DLPack, no host
copy), scaled to the streammux size on the GPU when it differs. Live and network sources keep the
PyAV reader. :func:`nvdec_usable` decides per source; ``DSRUN_DEVICE=cpu`` turns the GPU path off.
"""

from __future__ import annotations

import os
import threading

from runner.pipeline.source import CAMERA_V4L2, SourceCorruptData, SourceNotFound, SourceReader, SourceSpec
from runner.pipeline.stats import SourceStats

_CODECS = (".mp4", ".mkv", ".mov", ".h264", ".264", ".h265", ".265", ".hevc")


def nvdec_available() -> bool:
    """PyNvVideoCodec and a CUDA build of torch with a GPU are present, and not turned off."""
    if os.environ.get("DSRUN_DEVICE", "auto").strip().lower() == "cpu":
        return False
    try:
        import PyNvVideoCodec  # noqa: F401
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def nvdec_usable(spec: SourceSpec) -> bool:
    """This source can decode on the GPU: a local video file (not a camera, not a network stream)."""
    return (not spec.network and spec.type != CAMERA_V4L2 and not spec.live
            and spec.path.suffix.lower() in _CODECS and nvdec_available())


class NvdecReader(SourceReader):
    """Decodes one file on NVDEC in a background thread and feeds streammux CUDA tensors.

    A :class:`SourceReader` (same thread life cycle, statistics, EOS and typed errors) whose decode
    loop is the GPU's: only :meth:`_play` differs."""

    def __init__(self, spec: SourceSpec, sink, stats: SourceStats, size: tuple[int, int] = (0, 0),
                 stop: threading.Event | None = None, gpu_id: int = 0, prefetch: int = 2) -> None:
        super().__init__(spec, sink, stats, to_rgb=None, stop=stop)
        self.name = f"nvdec-{spec.source_id}"
        self.size = size  # streammux (width, height); (0, 0) keeps the decoded size
        # frames the decoder holds ahead (1080p RGB: 6 MiB each, per source): 2, not 8, keeps 128
        # sources' decoders 8.6 GiB lighter and decoding 11 % faster on the H200
        # (docs/bench/bench_h200_decode_prefetch.json: 3,232 fps / 20.7 GiB at 8, 3,580 fps / 12.1 GiB at 2)
        self.gpu_id, self.prefetch = gpu_id, prefetch

    def _play(self) -> None:
        spec = self.spec
        if not spec.path.is_file():
            raise SourceNotFound(spec.source_id, spec.uri, "no such file", "check the path in 'uri'")
        while not self.stop_event.is_set():
            before = self._decoded
            if not self._decode_once():
                return  # the run is stopping
            if self._decoded == before:
                raise SourceCorruptData(spec.source_id, spec.uri, "NVDEC decoded no frame",
                                        "check the file with ffprobe; set DSRUN_DEVICE=cpu to decode with FFmpeg")
            if not spec.file_loop:
                return

    def _decode_once(self) -> bool:
        import PyNvVideoCodec as nvc
        import torch
        import torch.nn.functional as F

        spec = self.spec
        decoder = nvc.ThreadedDecoder(str(spec.path), buffer_size=self.prefetch, gpu_id=self.gpu_id,
                                      use_device_memory=True, output_color_type=nvc.OutputColorType.RGB)
        meta = decoder.get_stream_metadata()
        fps = float(getattr(meta, "average_fps", 0) or getattr(meta, "fps", 0) or 30.0)
        step_ns = int(1e9 / fps)
        width, height = self.size
        first = self._decoded
        with torch.cuda.device(self.gpu_id):
            while not self.stop_event.is_set():
                frames = decoder.get_batch_frames(self.prefetch)
                if not frames:
                    break
                for frame in frames:
                    if self._skip():
                        self._pts_offset += step_ns  # the timeline goes on where the lost worker left it
                        continue
                    if not self._count_decoded():
                        continue
                    image = torch.from_dlpack(frame)  # (H, W, 3) uint8 on the GPU, decoder-owned
                    h, w = int(image.shape[0]), int(image.shape[1])
                    if width and height and (w, h) != (width, height):
                        image = F.interpolate(image.permute(2, 0, 1)[None].float(), size=(height, width),
                                              mode="bilinear", align_corners=False)
                        image = image[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
                    else:
                        image = image.clone()  # the decoder reuses its surfaces
                    pts = self._pts_offset + (self._decoded - 1 - first) * step_ns
                    if not self.sink.put(spec.source_id, image, pts, (w, h)):
                        return False
        self._pts_offset += (self._decoded - first) * step_ns
        return not self.stop_event.is_set()
