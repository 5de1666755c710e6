"""Shipped training YAMLs through the CLI: each is accepted by the command its header names, and
`echoweave train --recipe` trains both stages of a multi-stage recipe, stage 2 from stage 1."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from echoweave.argv_rewrites import given_options, rewrite_argv
from echoweave.cli import build_parser, main
from echoweave.train.engine import recipe as recipe_mod
from echoweave.train.engine.recipe import CONFIG_DIR, load_recipe, stage_config

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))
# Tiny sizes: the end-to-end recipe run takes seconds on one CPU thread.
TINY = ["--data.phantom_patients", "3", "--data.phantom_clips_per_view", "1", "--data.phantom_frames", "8",
        "--data.phantom_size", "48", "--data.preprocessing.resize", "36", "--data.preprocessing.crop", "32",
        "--optim.epochs", "1"]


def run_command(path: Path) -> list[str]:
    """The ``Run: echoweave ...`` command of a shipped YAML's header, as argv (without `echoweave`)."""
    match = re.search(r"Run:\s+echoweave\s+([^\n(]+)", path.read_text())
    assert match, f"{path.name}: its header names no 'Run: echoweave ...' command"
    return shlex.split(match.group(1))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_yaml_is_accepted_by_the_command_its_header_names(path, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)  # headers give paths relative to the repository
    argv = run_command(path)
    assert path.stem in " ".join(argv), f"{path.name}: its Run line names another file: {argv}"
    cfg = build_parser().parse_args(rewrite_argv(argv))  # a refused option exits here
    if cfg.subcommand == "train" and cfg.train.recipe is None:
        assert cfg.train.config, "a single-stage config is run with --config"
        return
    recipe = load_recipe(cfg[cfg.subcommand].recipe)
    for stage in ["stage1", *(["stage2"] if "stage2" in recipe else []), *recipe.get("variants", {})]:
        stage_config(recipe, stage, tmp_path)  # every stage builds a TrainConfig


def test_a_recipe_given_to_train_config_runs_as_a_recipe(capsys):
    path = str(CONFIG_DIR / "demo_cpu.yaml")
    assert rewrite_argv(["train", "--config", path, "--optim.epochs", "1"]) == \
        ["train", "--recipe", path, "--optim.epochs", "1"]
    assert "multi-stage recipe" in capsys.readouterr().err
    single = str(CONFIG_DIR / "paper_stage1_image.yaml")
    assert rewrite_argv(["train", "--config", single]) == ["train", "--config", single]


def test_train_recipe_overrides_only_the_options_given(monkeypatch, capsys):
    seen = {}

    def fake_run_recipe(path, out, **overrides):
        seen.update(path=path, out=out, overrides=overrides)
        return {}

    monkeypatch.setattr(recipe_mod, "run_recipe", fake_run_recipe)
    main(["train", "--recipe", "demo_cpu", "--data.path", "/data/NED", "--optim.epochs", "2", "--no-data.augment"])
    assert seen == {"path": "demo_cpu", "out": str(Path("runs") / "demo_cpu"),
                    "overrides": {"data": {"path": "/data/NED", "augment": False}, "optim": {"epochs": 2}}}
    with pytest.raises(SystemExit) as exc:
        main(["train", "--recipe", "demo_cpu", "--stage", "image"])
    assert exc.value.code == 2 and "--stage cannot be combined with --recipe" in capsys.readouterr().err


def test_train_recipe_option_equal_to_its_default_still_overrides(monkeypatch):
    # demo_cpu sets 4 clips per view; `--data.phantom_clips_per_view 2` is the TrainConfig default
    # and was once dropped as "unchanged", silently training on 4.
    seen = {}
    monkeypatch.setattr(recipe_mod, "run_recipe", lambda path, out, **overrides: seen.update(overrides) or {})
    main(["train", "--recipe", "demo_cpu", "--data.phantom_clips_per_view", "2", "--data.augment",
          "--threads=0", "--optim.epochs", "3"])
    assert seen == {"data": {"phantom_clips_per_view": 2, "augment": True}, "threads": 0, "optim": {"epochs": 3}}


def test_given_options_reads_dotted_names_switches_and_equals():
    assert given_options(["train", "--recipe", "demo_cpu", "--data.path", "/x", "--no-data.augment",
                          "--optim.epochs=2", "--", "--not.an.option"]) == \
        {"recipe", "data.path", "data.augment", "optim.epochs"}
    assert given_options() == set()  # outside `echoweave.cli.main`: nothing was given


def test_train_recipe_trains_both_stages_the_second_from_the_first(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["train", "--recipe", "demo_cpu", "--out", str(out), *TINY])
    printed = capsys.readouterr().out
    stage1, stage2 = (json.loads((out / s / "config.json").read_text()) for s in ("stage1", "stage2"))
    assert f"stage1 checkpoint: {out / 'stage1'}" in printed and f"stage2 checkpoint: {out / 'stage2'}" in printed
    assert (stage1["stage"], stage1["model"]["name"], stage1["init_from"]) == ("image", "image", None)
    assert (stage2["stage"], stage2["model"]["name"], stage2["init_from"]) == ("temporal", "tfw", str(out / "stage1"))
    # The recipe's own per-stage values survive; the options given override both stages.
    assert (stage1["optim"]["lr"], stage2["optim"]["lr"]) == (0.05, 0.003)
    assert stage1["optim"]["epochs"] == stage2["optim"]["epochs"] == 1
    assert stage1["data"]["phantom_patients"] == stage2["data"]["phantom_patients"] == 3
    assert stage2["data"]["preprocessing"]["crop"] == 32
    for stage in ("stage1", "stage2"):
        assert (out / stage / "checkpoints" / "epoch_0001").is_dir()


def test_kfold_only_folds_takes_one_index_or_a_list(monkeypatch):
    from echoweave.train.engine import kfold as kfold_mod

    seen = []
    monkeypatch.setattr(kfold_mod, "run_kfold", lambda recipe, **kw: seen.append(kw["only_folds"]))
    main(["kfold", "--recipe", "table2_cpu", "--only_folds", "0"])
    main(["kfold", "--recipe", "table2_cpu", "--only_folds", "[0,2]"])
    main(["kfold", "--recipe", "table2_cpu"])
    assert seen == [[0], [0, 2], None]
