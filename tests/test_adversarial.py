"""Issue 16: the kit tried as a demanding user and as an attacker would. One test (or a few) per
case, numbered as in the issue; every one runs the real component (no mocks) and fails if the
defect comes back.

Errors must be one line naming the file and the problem, a non-zero exit and no traceback, and
must leave what was already written untouched.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from echoweave.edge.errors import EchoweaveError

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``echoweave ARGV`` in-process: ``(exit status, stdout, stderr)``."""
    from echoweave.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """A refused command: non-zero exit, one ``echoweave: error:`` line naming every needle, no traceback."""
    assert code != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("echoweave: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ---- 1, 2, 16: training runs and checkpoints --------------------------------------------------
@pytest.fixture(scope="module")
def store():
    import torch

    from echoweave.train.engine.data import load_store
    from tests.helpers.tiny import tiny_config

    torch.set_num_threads(1)
    return load_store(tiny_config("unused").data, show_progress=False)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "tb" not in p.relative_to(folder).parts}


def test_01_training_into_an_existing_run_is_refused_and_loses_nothing(tmp_path, store):
    from echoweave.train.engine import checkpoint as ckpt
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    run_training(tiny_config(tmp_path, optim={"epochs": 2}), store=store, show_progress=False)
    before = _snapshot(tmp_path)
    with pytest.raises(EchoweaveError, match=r"already holds a run .*epoch_0002.*--resume.*--overwrite"):
        run_training(tiny_config(tmp_path, optim={"epochs": 1}), store=store, show_progress=False)
    assert _snapshot(tmp_path) == before  # config.json, metrics.json and both checkpoints untouched

    # An explicit overwrite replaces the run; the new checkpoint survives pruning and `latest` names it.
    result = run_training(tiny_config(tmp_path, optim={"epochs": 1}, overwrite=True), store=store,
                          show_progress=False)
    assert result.checkpoint.name == "epoch_0001" and result.checkpoint.is_dir()
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "epoch_0001"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch_*")) == ["epoch_0001"]
    assert ckpt.find_checkpoint(tmp_path) == result.checkpoint


def test_01_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    import torch

    from echoweave.train.engine import checkpoint as ckpt

    model = torch.nn.Linear(2, 2)
    for epoch in (9, 10):  # an older, longer run left higher epoch numbers behind
        ckpt.save_checkpoint(tmp_path, epoch, model, {"class_names": ["a", "b"]}, keep=2)
    final = ckpt.save_checkpoint(tmp_path, 1, model, {"class_names": ["a", "b"]}, keep=2)
    assert final.is_dir() and (final / ckpt.WEIGHTS).is_file()
    assert ckpt.find_checkpoint(tmp_path) == final
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch_*")) == ["epoch_0001", "epoch_0010"]


class _Payload:
    """Unpickling this runs ``exec``: what a crafted train_state.pt would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def test_02_resume_never_executes_code_from_the_checkpoint_folder(tmp_path, store):
    import torch

    from echoweave.train.engine import checkpoint as ckpt
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    run_training(tiny_config(tmp_path, optim={"epochs": 1}), store=store, show_progress=False)
    folder = ckpt.find_checkpoint(tmp_path)
    assert ckpt.load_train_state(folder)["optimizer"]["param_groups"]  # the real state loads
    marker = tmp_path / "payload_ran"
    torch.save({"optimizer": _Payload(marker), "scheduler": {}}, folder / ckpt.STATE)
    with pytest.raises(EchoweaveError, match=r"train_state.pt: refused: .*could run code") as info:
        run_training(tiny_config(tmp_path, optim={"epochs": 2}, resume=True), store=store, show_progress=False)
    assert "\n" not in str(info.value)
    assert not marker.exists(), "the pickle payload ran"
    assert ckpt.find_checkpoint(tmp_path) == folder  # nothing was trained or written over


def test_16_stale_temporary_epoch_folders_are_cleaned_on_the_next_start(tmp_path, store):
    from echoweave.train.engine import checkpoint as ckpt
    from echoweave.train.engine.run import run_training
    from tests.helpers.tiny import tiny_config

    run_training(tiny_config(tmp_path, optim={"epochs": 2}), store=store, show_progress=False)
    stale = tmp_path / "checkpoints" / ".epoch_0003.k1ll3d"  # what kill -9 during save_checkpoint leaves
    stale.mkdir()
    (stale / ckpt.WEIGHTS).write_bytes(b"half a file")
    assert ckpt.find_checkpoint(tmp_path).name == "epoch_0002"  # never mistaken for a checkpoint
    run_training(tiny_config(tmp_path, optim={"epochs": 2}, resume=True), store=store, show_progress=False)
    assert not stale.exists()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []
    assert ckpt.find_checkpoint(tmp_path).name == "epoch_0002"


# ---- 3, 4, 5: artifact folders an attacker or a broken export could hand the runtime ---------
@pytest.fixture(scope="module")
def artifacts(tiny_checkpoint):
    """The real exported tiny TFW model (ExecuTorch, ONNX, LiteRT fp32), read-only: copy before editing."""
    from tests.helpers.edge_artifacts import exported_artifacts

    return exported_artifacts(tiny_checkpoint)


@pytest.fixture
def model_copy(artifacts, tmp_path):
    """A writable copy of the ONNX part of the exported folder, and a helper to edit its manifest."""
    dest = tmp_path / "model"
    dest.mkdir()
    manifest = json.loads((artifacts / "manifest.json").read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if a["format"] == "onnx"]
    for f in manifest["artifacts"][0]["files"]:
        shutil.copy2(artifacts / f["path"], dest / f["path"])
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def edit_manifest(folder: Path, change) -> dict:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return data


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    """A small real DICOM cine (MONOCHROME2) of a moving fan."""
    from tests.conftest import make_fan_clip
    from echoweave.edge.clip import Clip
    from echoweave.train.data.layout_writers import write_dicom

    frames = make_fan_clip(t=8, h=48, w=64, seed=3)[0]
    path = tmp_path_factory.mktemp("clip") / "loop.dcm"
    write_dicom(Clip(frames=frames, fps=25.0, patient_id="P1", source="phantom"), path)
    return path


def test_03_a_symlink_out_of_the_artifact_folder_is_refused(model_copy, tmp_path, clip_file, capsys):
    import echoweave.edge as ew
    from echoweave.edge.manifest import ManifestError, sha256_file

    outside = tmp_path / "outside"
    outside.mkdir()
    # A perfectly loadable graph outside the folder: only the path check can stop it.
    shutil.copy2(model_copy / "tfw_tiny_fp32.onnx", outside / "graph.onnx")
    (model_copy / "evil").symlink_to(outside, target_is_directory=True)

    def point_forward_outside(m):
        art = m["artifacts"][0]
        art["files"].append({"path": "evil/graph.onnx", "sha256": sha256_file(outside / "graph.onnx"),
                             "bytes": (outside / "graph.onnx").stat().st_size})
        art["methods"]["forward"]["file"] = "evil/graph.onnx"

    edit_manifest(model_copy, point_forward_outside)
    with pytest.raises(ManifestError, match=r"evil/graph.onnx: leads outside the artifact folder"):
        ew.load(model_copy, runtime="onnxruntime")
    code, _, err = run_cli(capsys, "classify", str(clip_file), "--model", str(model_copy))
    assert_one_line_error(code, err, "evil/graph.onnx", "outside the artifact folder")

    # A file that is itself a link out (no folder in between) is refused too.
    (model_copy / "evil").unlink()
    (model_copy / "evil").mkdir()
    (model_copy / "evil" / "graph.onnx").symlink_to(outside / "graph.onnx")
    with pytest.raises(ManifestError, match="leads outside the artifact folder"):
        ew.load(model_copy, runtime="onnxruntime")


MALFORMED = {
    "classes as strings": (lambda m: m.update(classes=[c["name"] for c in m["classes"]]),
                           "classes[0]: 'APICAL"),
    "artifact methods as a list": (lambda m: m["artifacts"][0].update(methods=list(m["artifacts"][0]["methods"])),
                                   "artifacts[0].methods: ['forward'"),
    "a file without sha256": (lambda m: m["artifacts"][0]["files"][0].pop("sha256"),
                              "artifacts[0].files[0]: 'sha256' is a required property"),
    "frames disagree with the input spec": (lambda m: m.update(frames=m["frames"] + 1),
                                            "frames is 5 but input_spec.frames is 4"),
    "class count disagrees with the outputs": (lambda m: m.update(classes=m["classes"][:-1]),
                                               "11 classes but input_spec.num_classes is 12"),
    "crop larger than resize": (lambda m: m["preprocessing"].update(crop=64),
                                "preprocessing: PreprocessSpec.crop (64) must not exceed resize (36)"),
    "negative threshold": (lambda m: m.update(uncertain_threshold=-0.5),
                           "uncertain_threshold: -0.5 is less than the minimum of 0"),
    "a path escaping with ..": (lambda m: m["artifacts"][0]["files"][0].update(path="../x.onnx"),
                                "must be relative to the folder"),
    "not an object at all": (lambda m: (m.clear(), m.update(x=1)), "'schema_version' is a required property"),
    "a layout longer than its shape": (
        lambda m: m["input_spec"]["methods"]["classify_window"]["inputs"][0].update(shape=[1]),
        "input_spec.methods.classify_window input has layout NTD but a 1-d shape [1]"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_04_malformed_manifests_are_one_line_errors(case, model_copy, clip_file, capsys):
    import echoweave.edge as ew
    from echoweave.edge.manifest import ManifestError

    change, expected = MALFORMED[case]
    edit_manifest(model_copy, change)
    with pytest.raises(ManifestError) as info:
        ew.load(model_copy, runtime="onnxruntime")
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(str(model_copy / "manifest.json"))
    code, out, err = run_cli(capsys, "classify", str(clip_file), "--model", str(model_copy))
    assert_one_line_error(code, err, "manifest.json", expected)
    assert out == ""


def test_04_manifest_schema_and_code_agree_on_the_vocabulary():
    from echoweave.edge import manifest as mf

    schema = json.loads(mf.SCHEMA_FILE.read_text())
    art = schema["$defs"]["artifact"]["properties"]
    assert tuple(art["format"]["enum"]) == mf.FORMATS and tuple(art["precision"]["enum"]) == mf.PRECISIONS
    assert tuple(schema["properties"]["methods"]["items"]["enum"]) == mf.METHODS
    assert tuple(schema["properties"]["aggregation"]["enum"]) == mf.AGGREGATIONS


def test_05_a_file_the_runtime_cannot_parse_names_the_artifact(model_copy, clip_file, capsys):
    import echoweave.edge as ew
    from echoweave.edge.errors import ArtifactError
    from echoweave.edge.manifest import sha256_file

    bad = model_copy / "tfw_tiny_fp32_embed_frame.onnx"
    bad.write_bytes(b"\x08\x07" + os.urandom(2000))  # not a protobuf ONNX Runtime can read

    def reseal(m):  # the attacker (or a broken copy) also fixed sha256 and size: the check passes
        for f in m["artifacts"][0]["files"]:
            if f["path"] == bad.name:
                f["sha256"], f["bytes"] = sha256_file(bad), bad.stat().st_size

    edit_manifest(model_copy, reseal)
    with pytest.raises(ArtifactError, match=r"artifact 'onnx_cpu_fp32' .*onnxruntime cannot load it") as info:
        ew.load(model_copy, runtime="onnxruntime")
    assert "\n" not in str(info.value)
    code, _, err = run_cli(capsys, "classify", str(clip_file), "--model", str(model_copy))
    assert_one_line_error(code, err, "onnx_cpu_fp32", "cannot load it")


def test_05_a_method_pointing_at_the_wrong_file_fails_at_load(model_copy, clip_file, capsys):
    import echoweave.edge as ew
    from echoweave.edge.errors import ArtifactError

    edit_manifest(model_copy, lambda m: m["artifacts"][0]["methods"]["forward"].update(
        file="tfw_tiny_fp32_embed_frame.onnx"))
    with pytest.raises(ArtifactError, match=r"method 'forward' of artifact 'onnx_cpu_fp32' "
                                            r"\(tfw_tiny_fp32_embed_frame.onnx\): input shape"):
        ew.load(model_copy, runtime="onnxruntime")
    code, _, err = run_cli(capsys, "classify", str(clip_file), "--model", str(model_copy))
    assert_one_line_error(code, err, "tfw_tiny_fp32_embed_frame.onnx", "does not match the manifest")


# ---- 6: ValueErrors reachable from the CLI ---------------------------------------------------
@pytest.mark.parametrize("argv, needle", [
    (("models", "--backbone", "foo"), "models: unknown backbone 'foo'"),
    (("models", "--frames", "3"), "models: tfw needs feature_dim divisible by frames"),
    (("models", "--num_classes", "0"), "models: ModelConfig.num_classes must be >= 1"),
])
def test_06_cli_value_errors_are_one_line(argv, needle, capsys):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert_one_line_error(code, err, needle)


# ---- 18: a parity verdict that means something -----------------------------------------------
def test_18_parity_is_judged_on_numerics_and_never_met_beside_zero_agreement():
    from echoweave.export.parity import judge, numerics, parity_markdown

    rng = np.random.default_rng(0)
    eager = rng.normal(size=(4, 12)) * 0.01  # a barely trained model: every top-1 margin is tiny
    noisy = eager + rng.normal(size=eager.shape) * 0.02  # int8-sized noise flips every arg-max
    noisy[np.arange(4), eager.argmax(1)] -= 1.0
    assert (noisy.argmax(1) != eager.argmax(1)).all()
    row = {"id": "executorch_xnnpack_int8", "precision": "int8", "ran": True, "accuracy_drop_pp": 0.0,
           "top1_agreement": 0.0, "streaming": {}, "methods": {"forward": numerics(noisy, eager)}}
    row.update(judge(row, eager, noisy))
    assert row["verdict"] == "MISSED" and "SQNR" in row["why"]

    # Numerics fine but margins below the noise: inconclusive, and it says why; never "met".
    close = eager + rng.normal(size=eager.shape) * 1e-4
    close[0] = eager[0][::-1]  # one window disagrees
    row = {"id": "x", "precision": "fp32", "ran": True, "accuracy_drop_pp": 0.0, "top1_agreement": 0.75,
           "streaming": {}, "methods": {"forward": {"sqnr_db": 60.0, "rel_error": 1e-3}}}
    row.update(judge(row, eager, close))
    assert row["verdict"] == "inconclusive" and "too small" in row["why"] and row["decisive_windows"] < 10

    # A healthy model and artifact: decisive margins, high SQNR -> met.
    eager = rng.normal(size=(40, 12)) * 3.0
    row = {"id": "y", "precision": "fp32", "ran": True, "accuracy_drop_pp": 0.0, "top1_agreement": 1.0,
           "streaming": {}, "methods": {"forward": numerics(eager + 1e-6, eager)}}
    row.update(judge(row, eager, eager + 1e-6))
    assert row["verdict"] == "met" and row["decisive_windows"] >= 30

    # Near-tied model: every decisive window agrees, but 20 of 40 flip inside the noise. MISSED, and
    # the reason says which rule failed (it used to print only the perfect decisive agreement).
    tied = rng.normal(size=(40, 12)) * 3.0
    tied[:20, 1] = tied[:20, 0] = tied[:20].max(1) + 5.0  # two equal top logits: a tie
    tied[:20, 0] += 1e-4
    flipped = tied + rng.normal(size=tied.shape) * 1e-5
    flipped[:20, 1] += 3e-4  # every tie flips to the other class
    row = {"id": "z", "precision": "int8", "ran": True, "accuracy_drop_pp": 0.0, "top1_agreement": 0.5,
           "streaming": {}, "methods": {"forward": numerics(flipped, tied)}}
    row.update(judge(row, tied, flipped))
    assert row["verdict"] == "MISSED" and row["decisive_agreement"] == 1.0
    assert row["why"].startswith("overall agreement 50.0% < 90% (20 of 40 windows flipped, 20 of them within")
    assert "decisive agreement 100.0%" in row["why"]
    assert "met (" not in parity_markdown({"model_id": "m", "held_out": {"windows": 4, "clips": 1, "patients": []},
                                           "artifacts": []})


def test_18_exported_parity_reports_sqnr_per_method_with_streaming(artifacts):
    report = json.loads((artifacts / "parity.json").read_text())
    md = (artifacts / "parity.md").read_text()
    for row in report["artifacts"]:
        assert set(row["methods"]) == {"forward", "embed_frame", "classify_window", "streaming"}
        assert all(m["sqnr_db"] > 40 for m in row["methods"].values())  # fp32 against eager fp32
        assert row["verdict"] == "met" and row["decisive_windows"] >= 10
    for line in md.splitlines():
        if ": met (" in line:
            assert "overall agreement 0.0%" not in line
    assert "Numerics per method" in md


# ---- 7, 10, 13: classify options checked before any work, outputs that never collide ---------
@pytest.mark.parametrize("extra, needle", [
    (("--csv", "{tmp}"), "is a folder"),
    (("--csv", "/proc/echoweave_results.csv"), "cannot write in /proc"),
    (("--csv", "{clip}/results.csv"), "is a file, not a folder"),
    (("--timeline", "{clip}"), "--timeline"),  # the input itself: refused, never overwritten
    (("--timeline", "{tmp}"), "is a folder"),
    (("--fps", "0"), "--fps must be a positive frame rate, got 0"),
    (("--fps", "-5"), "--fps must be a positive frame rate"),
    (("--threads", "-1"), "--threads must be 0"),
])
def test_07_10_classify_refuses_bad_options_before_any_work(extra, needle, model_copy, clip_file, tmp_path, capsys):
    before = clip_file.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    argv = [a.format(tmp=tmp_path, clip=clip_file) for a in extra]
    # A model folder that does not exist: an option error must come first, before any loading.
    code, out, err = run_cli(capsys, "classify", str(clip_file), "--model", str(tmp_path / "no_model"), *argv)
    assert_one_line_error(code, err, needle)
    assert out == "" and clip_file.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing  # no stray temporary files


def test_10_streams_and_readers_refuse_zero_fps(artifacts, tmp_path):
    import echoweave.edge as ew
    from echoweave.edge.errors import ClipReadError
    from echoweave.edge.readers import read_clip
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "img_1.png")
    with pytest.raises(ClipReadError, match="fps must be a positive number, got 0"):
        read_clip(tmp_path, fps=0)  # was: silently 30 fps
    clf = ew.load(artifacts, runtime="onnxruntime")
    with pytest.raises(ValueError, match="fps must be a positive number"):
        clf.stream(fps=0)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        ew.load(artifacts, runtime="onnxruntime", threads=-2)


def test_13_same_file_names_in_different_folders_get_their_own_timelines(artifacts, tmp_path, capsys):
    from echoweave.edge.clip import Clip
    from echoweave.train.data.layout_writers import write_dicom
    from tests.conftest import make_fan_clip

    for i, folder in enumerate(("exam_a", "exam_b")):
        (tmp_path / "in" / folder).mkdir(parents=True)
        frames = make_fan_clip(t=12, h=48, w=64, seed=i)[0]
        write_dicom(Clip(frames=frames, fps=4.0, patient_id=f"P{i}", source="x"), tmp_path / "in" / folder / "scan.dcm")
    code, out, err = run_cli(capsys, "classify", str(tmp_path / "in"), "--model", str(artifacts), "--runtime",
                             "onnxruntime", "--timeline", str(tmp_path / "out" / "timeline.png"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    pngs = [r["timeline_png"] for r in doc["results"]]
    assert len(set(pngs)) == 2 and all(Path(p).is_file() for p in pngs)
    assert sorted(Path(p).name for p in pngs) == ["timeline_exam_a_scan_dcm.png", "timeline_exam_b_scan_dcm.png"]


# ---- 8, 9: inputs that lie about themselves ---------------------------------------------------
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "YBR_FULL_422"])
def test_08_a_dicom_declaring_more_frames_than_it_holds_says_so(photometric, tmp_path, capsys, artifacts):
    import pydicom

    from echoweave.edge.clip import Clip
    from echoweave.edge.errors import ClipReadError
    from echoweave.edge.readers import read_clip
    from echoweave.train.data.layout_writers import write_dicom
    from tests.conftest import make_fan_clip

    frames = make_fan_clip(t=8, h=48, w=64, seed=3)[0]
    if photometric != "MONOCHROME2":
        frames = np.repeat(frames[..., None], 3, axis=-1)
    path = tmp_path / "liar.dcm"
    write_dicom(Clip(frames=frames, fps=25.0, patient_id="P1", source="x"), path, photometric=photometric)
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 100000
    ds.save_as(path)
    with pytest.raises(ClipReadError, match="declares 100000 frames, holds 8"):
        read_clip(path)
    code, out, err = run_cli(capsys, "classify", str(path), "--model", str(artifacts), "--runtime", "onnxruntime")
    assert code == 1 and "declares 100000 frames, holds 8" in out and "Traceback" not in err + out


@pytest.mark.parametrize("bad", ["a", None.__class__, [1.0], True, float("inf")])
def test_09_push_time_s_that_is_not_a_number_is_the_streams_input_error(bad, artifacts):
    import echoweave.edge as ew
    from echoweave.edge.classifier import StreamInputError

    stream = ew.load(artifacts, runtime="onnxruntime").stream(sector=None)
    frame = np.zeros((24, 32), np.uint8)
    with pytest.raises(StreamInputError, match="time_s must be finite"):
        stream.push(frame, time_s=bad)
    assert stream.frames_seen == 0  # the stream is unchanged
    stream.push(frame, time_s=0.5)
    assert stream.frames_seen == 1


# ---- 11: bounded memory for huge frames ------------------------------------------------------
HUGE_STREAM = """
import json, sys, time
import numpy as np
import echoweave.edge as ew
from echoweave.benchmarks.memprobe import proc_status_mb

side, n = int(sys.argv[2]), int(sys.argv[3])
stream = ew.load(sys.argv[1], runtime="onnxruntime", threads=1).stream(sector="auto")
rng = np.random.default_rng(0)
yy, xx = np.ogrid[:side, :side]
fan = (yy - 0) ** 2 + (xx - side // 2) ** 2 < (0.8 * side) ** 2
frame = np.zeros((side, side), np.uint8)
base = proc_status_mb("VmHWM")
t0 = time.perf_counter()
for i in range(n):
    frame[fan] = rng.integers(20, 200, size=int(fan.sum()), dtype=np.uint8)  # moving speckle in the fan
    stream.push(frame)
print(json.dumps({"peak_growth_mb": proc_status_mb("VmHWM") - base, "seconds": time.perf_counter() - t0,
                  "frame_mb": side * side / 2**20, "sector_updates": stream.sector_updates,
                  "method": stream.sector_method}))
"""


def test_11_huge_frames_in_a_stream_keep_memory_bounded(artifacts):
    import subprocess
    import sys

    side, n = 4096, 17  # 16 MiB frames; the sector estimate needs 16 of them
    done = subprocess.run([sys.executable, "-c", HUGE_STREAM, str(artifacts), str(side), str(n)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["sector_updates"] == 1 and facts["method"] == "motion"
    # Before: 16 full frames held plus a float32 copy of their stack (> 80 frame sizes, 1.3 GB here).
    # Now: the window's T=4 raw frames plus one frame's preprocessing temporaries.
    assert facts["peak_growth_mb"] < 40 * facts["frame_mb"], facts


# ---- 12, 15: what a user expects from stills and short clips ---------------------------------
def test_12_a_folder_of_stills_is_one_frame_clips_with_the_sector_method_shown(artifacts, tmp_path, capsys):
    from PIL import Image

    from tests.conftest import make_fan_clip

    stills = tmp_path / "stills"
    stills.mkdir()
    for name, seed in (("a4c.png", 1), ("psax_mid.png", 2), ("plax.jpg", 3)):
        Image.fromarray(make_fan_clip(t=1, h=48, w=64, seed=seed)[0][0]).save(stills / name)
    code, out, err = run_cli(capsys, "classify", str(stills), "--model", str(artifacts), "--runtime", "onnxruntime",
                             "--json")
    assert code == 0, err
    results = json.loads(out)["results"]
    assert sorted(Path(r["path"]).name for r in results) == ["a4c.png", "plax.jpg", "psax_mid.png"]
    for r in results:
        assert r["frames"] == 1 and r["prediction"]["windows"] == 1
        assert r["prediction"]["sector_method"] == "single_frame_brightness"  # a guess, and it says so
    # A numbered frame sequence is still one clip.
    seq = tmp_path / "seq"
    seq.mkdir()
    for i, frame in enumerate(make_fan_clip(t=6, h=48, w=64, seed=4)[0]):
        Image.fromarray(frame).save(seq / f"img_{i + 1:05d}.png")
    code, out, _ = run_cli(capsys, "classify", str(seq), "--model", str(artifacts), "--runtime", "onnxruntime",
                           "--json")
    (result,) = json.loads(out)["results"]
    assert result["frames"] == 6 and result["prediction"]["sector_method"] == "motion"


def test_12_the_brightness_fallback_does_not_keep_an_ecg_trace_touching_the_fan():
    from echoweave.edge.sector import BRIGHTNESS, box_mean, estimate_sector
    from tests.conftest import make_fan_clip

    frame, fan, _ = make_fan_clip(t=1, h=96, w=128, seed=0)
    frame = frame.copy()
    ecg = np.zeros(fan.shape, bool)
    xs = np.arange(0, 128)
    ys = (86 + 3 * np.sin(xs / 4.0)).astype(int)
    for dy in (0, 1):  # a 2-pixel trace across the image, through the bottom of the fan
        ecg[ys + dy, xs] = True
    frame[0][ecg] = 230
    sector = estimate_sector(frame)
    assert sector.method == BRIGHTNESS
    outside = ecg & ~(box_mean(fan, 7) > 0)  # the trace more than 3 pixels from the fan
    assert outside.sum() > 50
    assert not (sector.mask & outside).any(), "the ECG trace outside the fan was kept"
    assert (sector.mask & fan).sum() > 0.8 * fan.sum()  # the fan itself is kept


def test_15_a_clip_shorter_than_the_window_is_padded_with_a_warning(artifacts, tmp_path, capsys):
    import echoweave.edge as ew
    from tests.conftest import make_fan_clip

    clf = ew.load(artifacts, runtime="onnxruntime")
    frames = make_fan_clip(t=2, h=48, w=64, seed=5)[0]
    pred = clf.predict(frames)
    assert pred.warnings == ["2 frames, shorter than the model's window of 4: padded by repeating the last frame"]
    assert clf.predict(make_fan_clip(t=6, h=48, w=64, seed=5)[0]).warnings == []
    from echoweave.edge.clip import Clip
    from echoweave.train.data.layout_writers import write_dicom

    write_dicom(Clip(frames=frames, fps=25.0, patient_id="P", source="x"), tmp_path / "short.dcm")
    code, out, _ = run_cli(capsys, "classify", str(tmp_path / "short.dcm"), "--model", str(artifacts), "--runtime",
                           "onnxruntime")
    assert code == 0 and "WARNING: 2 frames, shorter than the model's window of 4" in out


# ---- 14: data inspect names what it skipped ---------------------------------------------------
def test_14_data_inspect_names_the_skipped_files(tmp_path, capsys, ybr_cine_path):
    root = tmp_path / "dicoms"
    root.mkdir()
    shutil.copy(ybr_cine_path, root / "good.dcm")
    data = Path(ybr_cine_path).read_bytes()
    (root / "cut.dcm").write_bytes(data[:200])  # truncated header
    code, out, err = run_cli(capsys, "data", "inspect", str(root))
    assert code == 0, err
    assert f"skipped {root / 'cut.dcm'}:" in out
    code, out, _ = run_cli(capsys, "data", "inspect", str(root), "--json")
    summary = json.loads(out)
    assert summary["clips"] == 1 and any(s.startswith(f"{root / 'cut.dcm'}: ") for s in summary["skipped_files"])


# ---- 17: the Android tools' real outputs -----------------------------------------------------
FIX = REPO / "tests" / "fixtures" / "bench"


def test_17_executor_runner_inference_took_line_gives_the_mean():
    from echoweave.benchmarks.android import parse_executor_runner

    p = parse_executor_runner((FIX / "executor_runner_inference_took.txt").read_text())
    assert p["executions"] == 10 and p["total_ms"] == pytest.approx(824.212)
    assert p["mean_ms"] == pytest.approx(82.4212) and p["ok"] and p["samples_ms"] == []


def _replay(et_log: str, bm_log: str):
    def replay(cmd):
        if "getprop" in cmd:
            return "\n"
        if any(c.startswith("--model_path=") for c in cmd):
            return et_log
        if any(c.startswith("--graph=") for c in cmd):
            return bm_log
        return ""
    return replay


ANDROID_MANIFEST = {"model_id": "tfw_r50", "frames": 4, "artifacts": [
    {"id": "executorch_xnnpack_int8", "format": "executorch", "precision": "int8", "files": [{"path": "m.pte"}],
     "methods": {m: {"file": "m.pte", "entry": m} for m in ("forward", "embed_frame", "classify_window")}},
    {"id": "litert_xnnpack_int8", "format": "litert", "precision": "int8", "files": [{"path": "m.tflite"}],
     "methods": {m: {"file": "m.tflite", "entry": m} for m in ("forward", "embed_frame", "classify_window")}}]}


def test_17_release_builds_and_failed_delegates_are_failures_with_the_tools_reason(tmp_path):
    from echoweave.benchmarks.android import AdbTarget, parse_benchmark_model, run_android

    failed = parse_benchmark_model((FIX / "benchmark_model_delegate_failed.txt").read_text())
    assert failed["error"] == "Failed to apply GPU delegate." and failed["runs"] is None
    cells, skipped, _ = run_android(
        tmp_path, ANDROID_MANIFEST, AdbTarget(), "bin/executor_runner", "bin/benchmark_model", [2], ["window"], 1, 4,
        30.0, runner=_replay((FIX / "executor_runner_release.txt").read_text(),
                             (FIX / "benchmark_model_delegate_failed.txt").read_text()))
    assert cells == []  # never a cell with empty numbers
    reasons = {s["runtime"]: s["reason"] for s in skipped}
    assert "-DEXECUTORCH_ENABLE_LOGGING=ON" in reasons["executorch"] and "no timing" in reasons["executorch"]
    assert reasons["litert"].endswith("failed: Failed to apply GPU delegate.")


def test_17_scientific_averages_info_prefixes_and_percentiles_parse(tmp_path):
    from echoweave.benchmarks.android import AdbTarget, parse_benchmark_model, run_android

    text = (FIX / "benchmark_model_scientific_avg.txt").read_text()
    p = parse_benchmark_model(text)
    assert p["runs"]["count"] == 10 and p["runs"]["avg"] == pytest.approx(1245.67)
    assert p["runs"]["median"] == pytest.approx(1244.861) and p["runs"]["p95"] == pytest.approx(1261.370)
    assert p["inference_avg_ms"] == pytest.approx(1245.67) and p["error"] is None
    assert p["memory_mb"]["periodic_peak"] == pytest.approx(196.4) and p["delegated_nodes"] == 66
    cells, skipped, _ = run_android(
        tmp_path, ANDROID_MANIFEST, AdbTarget(), "bin/executor_runner", "bin/benchmark_model", [1], ["window"], 1, 10,
        30.0, runner=_replay((FIX / "executor_runner_inference_took.txt").read_text(), text))
    by_runtime = {c["runtime"]: c for c in cells}
    assert by_runtime["litert"]["latency_ms"]["median"] == pytest.approx(1244.861)
    assert by_runtime["executorch"]["latency_ms"]["mean"] == pytest.approx(82.4212)
    assert all(c["latency_ms"]["mean"] is not None for c in cells) and skipped == []
