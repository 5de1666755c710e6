"""EV9V's nine-view class set (issue 14): an EV9V layout labelled with EV9V's own view names is read
in the reference's class order and trains a tiny STFM for one epoch, end to end."""
from __future__ import annotations

import dataclasses
import json

import pytest

from echoweave.edge.errors import EchoweaveError
from echoweave.edge.views import EV9V
from echoweave.train.data.catalog import scan_dataset
from echoweave.train.data.layout_writers import write_ev9v
from echoweave.train.data.phantom import PhantomConfig, generate_clip, make_patient

# Nine phantom anatomies standing in for EV9V's nine views: the test needs nine distinct-looking
# classes, not a claim that these NED views are those EV9V views.
STAND_INS = ("PLAX_LV", "PSAX_MV", "PSAX_PAPS", "PSAX_AV", "APICAL_4C_LVRV", "APICAL_5C", "APICAL_2C_LV",
             "PSAX_APEX", "APICAL_3C_LV")


@pytest.fixture(scope="module")
def ev9v_root(tmp_path_factory):
    cfg = PhantomConfig(num_patients=3, num_frames=8, height=48, width=48)
    clips = []
    for p in range(3):
        patient = make_patient(p)
        for name, view in zip(EV9V, STAND_INS):
            if (p, name) == (0, "SC4C"):
                continue  # a dataset lacking a view keeps the reference's class ids
            clips.append(dataclasses.replace(generate_clip(view, patient, 0, cfg), view=name, label=None))
    splits = {"P000": "train", "P001": "train", "P002": "validation"}
    return write_ev9v(clips, tmp_path_factory.mktemp("ev9v") / "EchoData", splits)


def test_ev9v_names_keep_the_reference_class_order(ev9v_root):
    for class_set in ("ev9v", "ned12"):  # EV9V names are recognised whatever set was asked for
        cat = scan_dataset(str(ev9v_root), class_set=class_set)
        assert tuple(cat.class_names) == EV9V and len(cat) == 26
    labels = {r.view: r.label for r in scan_dataset(str(ev9v_root), class_set="ev9v").refs}
    assert labels == {name: i for i, name in enumerate(EV9V)}


def test_one_tiny_stfm_epoch_from_the_ev9v_layout(ev9v_root, tmp_path):
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    cfg = tiny_config(tmp_path / "run", model={"name": "stfm", "lstm_hidden": 16, "stream_dim": 16, "frames": 3,
                                               "frame_stride": 2},
                      data={"path": str(ev9v_root), "class_set": "ev9v"},
                      optim={"epochs": 1, "loss": "reedl", "optimizer": "adamw"})
    result = run_training(cfg, show_progress=False)
    assert result.model.num_classes == 9 and tuple(result.store.class_names) == EV9V
    meta = json.loads((result.checkpoint / "checkpoint.json").read_text())
    assert meta["class_names"] == list(EV9V) and meta["train"]["data"]["class_set"] == "ev9v"
    assert len(result.val_indices) > 0 and all(result.store.labels[result.val_indices] < 9)


def test_the_phantom_cannot_draw_ev9v_views():
    with pytest.raises(EchoweaveError, match="no anatomy"):
        PhantomConfig(class_set=EV9V)
