"""The GIE split (a batch pre-processed and inferred on threads of their own while the one before it is
parsed and clustered, ``runner.pipeline.prepare_ahead``) changes when the work runs, never what comes out.

A real config, the gallery's test2 (YOLOv4-tiny → tracker → MobileNetV2 on each object), run on a cut
of its real clip (street.mp4), three frames a batch (the last one short), the PGIE inferring two frames
an engine call (two calls a batch) with ``interval=1``, with the split and with ``DSRUN_GIE_SPLIT=0``:
every batch that leaves the pipeline — its frames, which of them the PGIE
inferred, every column of its objects (boxes, confidences, classes, track ids, parents) and of its
classifier results — and the run's per-stage counts are equal, in the same order; with
``DSRUN_GIE_SPLIT=1`` (pre-processing ahead: the default on the CPU) and ``2`` (the engine ahead too: the
default on a GPU).

One source: with several, which source's frame comes first in a batch depends on which decoder
delivered first (streammux's order, as nvstreammux's), so two runs may differ without the split.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import dsrun
from runner.pipeline.infer import GieStage
from samples_support import cut, sample_copy

FRAMES = 47  # 15 batches of 3 and one of 2


@pytest.fixture(scope="module")
def config(tmp_path_factory, assets):
    tmp = tmp_path_factory.mktemp("split")
    street = cut(assets.videos["street"], tmp / "street.mp4", FRAMES)
    folder = sample_copy("test2", tmp, assets, clips={"street.mp4": street}, replace={
        # full batches (no timeout): the same batches in every run
        "[streammux]\ngpu-id=0\nbatch-size=1\nbatched-push-timeout=40000":
        "[streammux]\ngpu-id=0\nbatch-size=3\nbatched-push-timeout=-1",
        "[primary-gie]\nenable=1\ngpu-id=0\nbatch-size=1": "[primary-gie]\nenable=1\ngpu-id=0\nbatch-size=2\ninterval=1",
        "# 3 = encode + file\ntype=3": "type=1"})  # fakesink: the metadata is compared, not the video
    text = (folder / "deepstream_app_config.txt").read_text()
    assert "interval=1" in text and "batch-size=3\nbatched-push-timeout=-1" in text and "type=1" in text
    return folder / "deepstream_app_config.txt"


def _run(config, split: str):
    """Every batch's columns, in the order they left the pipeline, the run's per-stage counts and, per
    step of the PGIE's split, the threads that ran it."""
    ran_on = {"preprocess_ahead": set(), "infer_ahead": set()}

    def observed(step):
        original = getattr(GieStage, step)

        def run(self, batch):  # where the step runs; the work itself is the stage's own
            ran_on[step].add(threading.current_thread().name)
            return original(self, batch)
        return run

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DSRUN_GIE_SPLIT", split)
        for step in ran_on:
            patch.setattr(GieStage, step, observed(step))
        seen, counts, inference = _columns_of_every_batch(config)
    return seen, counts, inference, ran_on


def _columns_of_every_batch(config):
    seen = []

    def on_batch(b):
        objs, cls = b.objects, b.classifications
        seen.append({
            "source_id": b.source_id.copy(), "frame_num": b.frame_num.copy(), "pts": b.pts.copy(),
            "inferred": {k: v.copy() for k, v in b.inferred.items()},
            **{f"objects.{name}": getattr(objs, name).copy() for name in objs.__slots__},
            **{f"classifications.{name}": getattr(cls, name).copy() for name in cls.__slots__}})

    result = dsrun.run(config, on_batch=on_batch)
    assert result.exit_code == 0, result.errors
    counts = {name: (st["batches"], st["frames"]) for name, st in result.report["stages"].items()}
    return seen, counts, result.report.get("inference")


@pytest.mark.parametrize("split", ["1", "2"])
def test_the_split_gives_every_batch_the_same_objects_tracks_and_labels_in_the_same_order(config, split):
    whole, whole_counts, whole_inference, whole_threads = _run(config, "0")
    parts, split_counts, split_inference, split_threads = _run(config, split)

    # DSRUN_GIE_SPLIT=0: every step on the stage thread (the SGIE never splits: it needs its history)
    assert whole_threads == {"preprocess_ahead": set(), "infer_ahead": set()}
    assert split_threads == ({"preprocess_ahead": {"stage-primary-gie-preprocess"}, "infer_ahead": set()}
                             if split == "1" else
                             {"preprocess_ahead": {"stage-primary-gie-preprocess"},
                              "infer_ahead": {"stage-primary-gie-infer"}})

    frames = [(int(s), int(n)) for b in parts for s, n in zip(b["source_id"], b["frame_num"])]
    assert frames == [(0, n) for n in range(FRAMES)]  # every frame once, in order
    assert [len(b["frame_num"]) for b in parts] == [3] * (FRAMES // 3) + [FRAMES % 3]
    assert sum(len(b["objects.frame"]) for b in parts) > 100 and sum(
        len(b["classifications.label"]) for b in parts) > 20  # objects and labels to compare
    assert {True, False} <= {bool(x) for b in parts for x in b["inferred"][1]}  # interval=1 skipped some

    assert len(parts) == len(whole)
    for i, (a, b) in enumerate(zip(whole, parts)):
        assert a.keys() == b.keys()
        for key in a:
            if key == "inferred":
                assert a[key].keys() == b[key].keys(), i
                for gie in a[key]:
                    np.testing.assert_array_equal(a[key][gie], b[key][gie], err_msg=f"batch {i} inferred[{gie}]")
            else:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"batch {i} {key}")
    # the stages' counts as without the split, plus a row per step thread that counts the same batches
    steps = ["preprocess"] + (["infer"] if split == "2" else [])
    assert split_counts == {**whole_counts, **{f"primary-gie:{step}": whole_counts["primary-gie"] for step in steps}}
    assert split_inference == whole_inference


def test_a_dsrun_gie_split_that_is_not_0_1_or_2_stops_the_run_saying_which_values_it_takes(config, monkeypatch, capsys):
    from runner.cli import main

    monkeypatch.setenv("DSRUN_GIE_SPLIT", "yes")
    assert main([str(config), "--no-dashboard"]) == 2
    err = capsys.readouterr().err
    assert "DSRUN_GIE_SPLIT='yes': not 0, 1 or 2 — unset it, or set 0 (no split)" in err
    assert "Traceback" not in err
