"""Pictures for docs/samples.md: one frame of each sample's own output video, as a small PNG.

    python3 scripts/make_sample_pictures.py               # run every sample, then take the frames
    python3 scripts/make_sample_pictures.py --no-run      # take the frames from out/samples/ as they are
    python3 scripts/make_sample_pictures.py lpr-cascade   # only these samples

Each picture is frame ``FRAME[name]`` of the video the sample wrote (the OSD output, boxes and labels
drawn by dsrun), scaled to ``WIDTH[name]`` pixels wide and stored as a palette PNG under
``docs/images/<name>.png``, fewer colours until it is under 150 KB.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import av
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runner import gallery  # noqa: E402

IMAGES = REPO / "docs" / "images"
MAX_BYTES = 150_000
VIDEO = {"int8": "out_int8.mp4"}  # the others: out.mp4
FRAME = {"test1": 201, "test2": 201, "lpr-cascade": 45, "multistream": 75, "msgbroker": 60, "face-cascade": 60, "faces": 60,
         "segmentation": 45, "int8": 45}
WIDTH = {"multistream": 960, "face-cascade": 352, "faces": 352, "segmentation": 352, "test1": 768, "test2": 768}  # the others: 640


def frame_of(video: Path, index: int) -> Image.Image:
    """Frame ``index`` of ``video`` (the last one if the video is shorter)."""
    last = None
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            last = frame
            if i == index:
                break
    if last is None:
        raise SystemExit(f"{video}: no frames")
    return last.to_image()


def small_png(image: Image.Image, width: int) -> bytes:
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    for colours in (256, 128, 64, 32):
        buf = io.BytesIO()
        image.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buf, "PNG", optimize=True)
        if buf.tell() <= MAX_BYTES:
            break
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="samples (default: all)")
    ap.add_argument("--no-run", action="store_true", help="use the outputs already in out/samples/NAME/")
    args = ap.parse_args(argv)
    names = args.names or [s.name for s in gallery.find_samples()]
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not args.no_run:
            code = gallery.run_sample(name, dashboard=False, out=REPO / "out" / "samples" / name)
            if code:
                print(f"{name}: exit {code}; no picture", file=sys.stderr)
                continue
        video = REPO / "out" / "samples" / name / VIDEO.get(name, "out.mp4")
        data = small_png(frame_of(video, FRAME.get(name, 30)), WIDTH.get(name, 640))
        path = IMAGES / f"{name}.png"
        path.write_bytes(data)
        print(f"{path.relative_to(REPO)}: frame {FRAME.get(name, 30)} of {video.relative_to(REPO)}, "
              f"{len(data) // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
