"""OSD and tiler on real decoded video frames: checked by pixel values."""

from types import SimpleNamespace

import cv2
import numpy as np

from runner.pipeline.batch import Classifications, Objects
from runner.pipeline.osd import OsdStage, colors_from_gies
from runner.pipeline.tiler import TilerStage, sink_frames

from tests.outputs_support import make_batch, video_frames

W, H = 640, 360


def osd_config(**over):
    base = dict(enable=1, border_width=3, text_size=15, text_color=(1.0, 1.0, 1.0, 1.0),
                text_bg_color=(0.3, 0.3, 0.3, 1.0), font="Serif", show_clock=0, clock_x_offset=800,
                clock_y_offset=820, clock_text_size=12, clock_color=(1.0, 0.0, 0.0, 0.0),
                display_text=1, display_bbox=1, display_mask=0)
    base.update(over)
    return SimpleNamespace(**base)


def two_objects():
    return Objects.from_columns(frame=[0, 0], gie_id=1, class_id=[0, 2], confidence=[0.9, 0.8],
                                xyxy=[[100, 120, 220, 300], [400, 50, 520, 150]], track_id=[5, -1])


def test_osd_draws_borders_in_the_class_colour_of_the_objects_gie():
    frames = video_frames(1, W, H)
    original = frames.copy()
    gie = SimpleNamespace(gie_unique_id=1, bbox_border_color={0: "0;1;0;1", 2: (0, 0, 1, 1)})
    border, bg = colors_from_gies([gie])
    osd = OsdStage(osd_config(display_text=0), border_colors=border, bg_colors=bg)
    out = osd.process(make_batch(frames, [0], [0], two_objects())).frames[0]
    # object 0 (class 0, green): a 3 px outline inside the box, interior untouched
    assert (out[120:123, 100:220] == [0, 255, 0]).all()
    assert (out[297:300, 100:220] == [0, 255, 0]).all()
    assert (out[120:300, 100:103] == [0, 255, 0]).all()
    assert (out[120:300, 217:220] == [0, 255, 0]).all()
    assert np.array_equal(out[123:297, 103:217], original[0, 123:297, 103:217])
    assert np.array_equal(out[119, 100:220], original[0, 119, 100:220])  # nothing outside
    # object 1 (class 2, blue)
    assert (out[50:53, 400:520] == [0, 0, 255]).all()


def test_osd_label_is_class_label_track_id_then_classifier_labels_by_gie_id():
    frames = video_frames(1, W, H)
    cls = Classifications.from_columns(obj=[0, 0], frame=0, gie_id=[6, 4], class_id=[1, 3],
                                       confidence=[0.7, 0.6], label=["sedan", "red"])
    batch = make_batch(frames, [0], [0], two_objects(), cls)
    osd = OsdStage(osd_config(), labels={1: ["car", "bicycle", "person"]})
    assert osd.label_texts(batch) == ["car 5 red sedan", "person"]
    out = osd.process(batch).frames[0]
    # label 1 sits at (left, top - 30) on the 0.3 grey background, with white text on it
    patch = out[20:40, 400:440]
    grey = np.all(np.abs(patch.astype(int) - 77) <= 1, axis=-1)
    white = np.all(patch >= 200, axis=-1)
    assert grey.mean() > 0.3 and white.any()


def test_osd_hides_labels_on_a_tiled_display_of_several_sources_like_deepstream_app():
    tiled = SimpleNamespace(enable=1, rows=1, columns=2, width=1280, height=360)
    assert not OsdStage(osd_config(), tiled_display=tiled, num_sources=2).show_text
    assert OsdStage(osd_config(), tiled_display=tiled, num_sources=1).show_text
    assert OsdStage(osd_config(), tiled_display=tiled, num_sources=2, show_tiled_text=True).show_text


def test_osd_draws_on_a_copy_when_frames_are_read_only():
    frames = video_frames(1, W, H)
    frames.flags.writeable = False
    batch = make_batch(frames, [0], [0], two_objects())
    out = OsdStage(osd_config(display_text=0)).process(batch)
    assert out.frames is not frames
    assert (out.frames[0, 120, 150] == [255, 0, 0]).all()  # default border colour is red
    assert not (frames[0, 120, 150] == [255, 0, 0]).all()


def test_osd_display_bbox_0_draws_no_border():
    frames = video_frames(1, W, H)
    original = frames.copy()
    out = OsdStage(osd_config(display_bbox=0, display_text=0)).process(
        make_batch(frames, [0], [0], two_objects())).frames
    assert np.array_equal(out, original)


def test_osd_blends_segmentation_class_map_over_the_frame():
    frames = video_frames(1, W, H)
    original = frames.copy().astype(np.float32)
    mask = np.full((1, 90, 160), -1, np.int32)
    mask[0, :45, :80] = 1  # top-left quarter is class 1
    batch = make_batch(frames, [0], [0])
    batch.masks = {1: mask}
    out = OsdStage(osd_config(display_mask=1, display_text=0)).process(batch).frames[0]
    from runner.pipeline.osd_draw import PALETTE
    expected = original[0, 50, 50] * 0.5 + PALETTE[1] * 0.5
    assert np.abs(out[50, 50].astype(np.float32) - expected).max() <= 1
    assert np.array_equal(out[300, 600], original[0, 300, 600].astype(np.uint8))


def test_osd_clock_is_drawn_opaque_at_its_offset_even_with_alpha_0():
    frames = video_frames(1, W, H)
    osd = OsdStage(osd_config(show_clock=1, clock_x_offset=20, clock_y_offset=30, clock_text_size=20,
                              clock_color="1;0;0;0"), clock=lambda: "12:34:56")
    out = osd.process(make_batch(frames, [0], [0])).frames[0]
    region = out[30:70, 20:200]
    assert np.all(region == [255, 0, 0], axis=-1).sum() > 50


def test_tiler_places_source_n_in_tile_n_row_major():
    frames = video_frames(4, W, H, start=0)
    frames[1] = video_frames(1, W, H, start=60)[0]
    frames[2] = 255 - frames[0]
    frames[3] = frames[0][:, ::-1]
    order = [2, 0, 3, 1]  # batch order differs from source order
    batch = make_batch(frames[order], order, [0, 0, 0, 0])
    cfg = SimpleNamespace(enable=1, rows=2, columns=2, width=1280, height=720)
    out = TilerStage(cfg, num_sources=4).process(batch)
    for sid in range(4):
        r, c = divmod(sid, 2)
        tile = out.tiled[r * 360:(r + 1) * 360, c * 640:(c + 1) * 640]
        assert np.array_equal(tile, frames[sid]), f"source {sid} not in tile {r},{c}"
    assert out.tile_transform[order.index(3)].tolist() == [640, 360, 1, 1]


def test_tiler_keeps_aspect_ratio_with_black_bars_centred():
    frames = video_frames(1, W, H)
    cfg = SimpleNamespace(enable=1, rows=1, columns=2, width=1280, height=720)
    out = TilerStage(cfg, num_sources=2).process(make_batch(frames, [1], [0]))
    # tile 1 is 640x720, the 640x360 frame sits centred with 180 px bars above and below
    assert np.array_equal(out.tiled[180:540, 640:1280], frames[0])
    assert not out.tiled[:180, 640:].any() and not out.tiled[540:, 640:].any()
    assert out.tile_transform[0].tolist() == [640, 180, 1, 1]


def test_tiler_scales_frames_and_tile_keeps_last_frame_of_a_source_missing_from_the_batch():
    frames = video_frames(2, W, H)
    cfg = SimpleNamespace(enable=1, rows=1, columns=2, width=640, height=180)
    tiler = TilerStage(cfg, num_sources=2)
    first = tiler.process(make_batch(frames, [0, 1], [0, 0])).tiled
    expected = cv2.resize(frames[1], (320, 180), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(first[:, 320:], expected)
    second = tiler.process(make_batch(frames[:1][:, ::-1].copy(), [0], [1])).tiled
    assert np.array_equal(second[:, 320:], expected)  # source 1 absent: its last frame stays
    assert not np.array_equal(second[:, :320], first[:, :320])


def test_osd_after_tiler_draws_boxes_in_tile_coordinates_and_sinks_get_the_tiled_image():
    frames = video_frames(2, W, H)
    objs = Objects.from_columns(frame=[1], gie_id=1, xyxy=[[100, 100, 300, 200]])
    cfg = SimpleNamespace(enable=1, rows=1, columns=2, width=640, height=180)
    batch = TilerStage(cfg, num_sources=2).process(make_batch(frames, [0, 1], [0, 0], objs))
    untouched = batch.frames.copy()
    out = OsdStage(osd_config(border_width=2), tiled_display=cfg, num_sources=2).process(batch)
    # source 1 is the right tile at half scale: the box maps to x 370..470, y 50..100
    assert (out.tiled[50:52, 370:470] == [255, 0, 0]).all()
    assert (out.tiled[50:100, 370:372] == [255, 0, 0]).all()
    assert np.array_equal(out.frames, untouched)  # enable=1: per-source frames are not drawn
    assert [sid for sid, _ in sink_frames(out, source_id=0)] == [-1]
    assert [sid for sid, _ in sink_frames(out, source_id=1, link_to_demux=True)] == [1]


def test_tiler_enable_2_osd_draws_on_tiled_image_and_per_source_frames():
    frames = video_frames(2, W, H)
    objs = Objects.from_columns(frame=[1], gie_id=1, xyxy=[[100, 100, 300, 200]])
    cfg = SimpleNamespace(enable=2, rows=1, columns=2, width=640, height=180)
    batch = TilerStage(cfg, num_sources=2).process(make_batch(frames, [0, 1], [0, 0], objs))
    out = OsdStage(osd_config(border_width=2), tiled_display=cfg, num_sources=2).process(batch)
    assert (out.frames[1, 100:102, 100:300] == [255, 0, 0]).all()
    assert (out.tiled[50:52, 370:470] == [255, 0, 0]).all()


def test_osd_draws_a_batch_of_frames_exactly_as_it_draws_each_frame_alone():
    """Boxes and backgrounds of a whole batch go in one pass over the frames stacked as one tall image;
    boxes at frame edges (clipped to their own frame), overlapping boxes of several colours and
    translucent backgrounds must come out as drawing frame by frame does."""
    frames = video_frames(4, W, H)
    rng = np.random.default_rng(7)
    n = 40
    xy = rng.uniform([-60, -60], [W - 20, H - 20], (n, 2))
    boxes = np.hstack([xy, xy + rng.uniform([10, 10], [260, 200], (n, 2))])
    boxes[:4] = [[-5, H - 30, 80, H + 40], [600, -20, 700, 50], [0, 0, W, H], [300, 340, 420, 400]]
    objs = Objects.from_columns(frame=rng.integers(0, 4, n), gie_id=rng.integers(1, 3, n),
                                class_id=rng.integers(0, 3, n), confidence=0.9, xyxy=boxes,
                                track_id=np.where(rng.random(n) < 0.5, np.arange(n), -1))
    gies = [SimpleNamespace(gie_unique_id=1, bbox_border_color={0: "0;1;0;1", 2: (0, 0, 1, 0.6)},
                            bbox_bg_color={1: (1, 1, 0, 0.3)}),
            SimpleNamespace(gie_unique_id=2, bbox_border_color=(1, 0, 1, 1))]
    border, bg = colors_from_gies(gies)
    mask = np.full((4, 90, 160), -1, np.int32)
    mask[:, 30:60, 40:100] = rng.integers(0, 3, (4, 30, 60))

    def osd():
        return OsdStage(osd_config(border_width=4, display_mask=1), labels={1: ["person", "bicycle", "car"]},
                        border_colors=border, bg_colors=bg)

    batch = make_batch(frames.copy(), [0, 1, 2, 3], [5, 5, 5, 5], objs)
    batch.masks = {1: mask}
    together = osd().process(batch).frames
    assert not np.array_equal(together, frames)
    alone = osd()
    for i in range(4):
        one = make_batch(frames[i:i + 1].copy(), [i], [5], objs[objs.frame == i])
        one.objects.frame[:] = 0
        one.masks = {1: mask[i:i + 1]}
        np.testing.assert_array_equal(alone.process(one).frames[0], together[i], err_msg=f"frame {i}")
