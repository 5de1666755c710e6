"""One vocabulary across `echoweave` subcommands, walked from the real parser.

The same thing has the same name and the same shape (positional or option) everywhere it is
taken; boolean options are bare flags with a ``--no-`` form; old spellings still work for one
release with a deprecation line. The table below is the README's vocabulary table.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from jsonargparse import ActionYesNo

from echoweave.argv_rewrites import rewrite_argv
from echoweave.cli import build_parser, main
from echoweave.cli_parser import fold_bool_values, iter_parsers

README = Path(__file__).resolve().parent.parent / "README.md"

# concept, spelling (parser dest), shape, the subcommands that take it
VOCABULARY = [
    ("checkpoint", "checkpoint", "positional", {"evaluate", "export"}),
    ("exported model", "model", "positional", {"bench"}),
    ("dataset path", "data.path", "option", {"train", "evaluate"}),
    ("output folder", "out", "option", {"data synth", "train", "evaluate", "kfold", "demo", "export", "bench"}),
    ("patients", "patients", "option", {"data synth", "demo"}),
    ("threads", "threads", "option", {"train", "export", "classify", "bench"}),
    ("JSON output", "json", "flag", {"data inspect", "models", "classify"}),
    ("recipe", "recipe", "option", {"train", "kfold", "demo"}),
    ("torch device", "device", "option", {"train", "evaluate"}),
]
# Spellings the vocabulary replaced or avoids; none may come back as an option.
NOT_IN_VOCABULARY = {"num_patients", "data_path", "output", "out_dir", "output_dir", "n_threads", "num_threads",
                     "ckpt", "checkpoint_dir", "artifacts", "no_json"}
# `model` names the exported model folder in bench and classify; in train it is the model config group.
MODEL_CONFIG_GROUP = {"train"}


def _leaf_parsers():
    return {" ".join(path): p for path, p in iter_parsers(build_parser())
            if path and getattr(p, "_subcommands_action", None) is None}


LEAVES = _leaf_parsers()


def _shape(action) -> str:
    if not action.option_strings:
        return "positional"
    return "flag" if isinstance(action, ActionYesNo) else "option"


def _actions(parser) -> dict:
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "config", "print_config")}


@pytest.mark.parametrize("concept,dest,shape,commands", VOCABULARY, ids=[v[0] for v in VOCABULARY])
def test_one_name_and_one_shape_per_concept(concept, dest, shape, commands):
    having = {name for name, p in LEAVES.items() if dest in _actions(p)}
    if dest == "model":
        having -= MODEL_CONFIG_GROUP
        assert _shape(_actions(LEAVES["classify"])["model"]) == "option"  # classify's subject is the clips
        having.discard("classify")
    assert having == commands, f"{concept}: taken by {sorted(having)}, vocabulary says {sorted(commands)}"
    for name in commands:
        assert _shape(_actions(LEAVES[name])[dest]) == shape, f"echoweave {name}: {concept} is not a {shape}"


@pytest.mark.parametrize("name", sorted(LEAVES))
def test_every_subcommand_speaks_the_vocabulary(name):
    actions = _actions(LEAVES[name])
    positionals = [d for d, a in actions.items() if not a.option_strings and d != "subcommand"]
    assert len(positionals) <= 1, f"echoweave {name}: one subject at most, got {positionals}"
    assert not set(actions) & NOT_IN_VOCABULARY, f"echoweave {name}: {set(actions) & NOT_IN_VOCABULARY}"
    for dest, action in actions.items():
        typehint = getattr(action, "_typehint", None)
        assert typehint not in (bool, bool | None), f"echoweave {name} --{dest}: a boolean that needs a value"
        if isinstance(action, ActionYesNo):
            assert action.option_strings == [f"--{dest}", f"--no-{dest}"]


def test_a_name_is_a_flag_everywhere_or_nowhere():
    """fold_bool_values treats an option string the same in every subcommand; that needs this."""
    kinds: dict[str, set[bool]] = {}
    for p in LEAVES.values():
        for a in p._actions:
            for opt in a.option_strings[:1]:
                kinds.setdefault(opt, set()).add(isinstance(a, ActionYesNo))
    assert not [opt for opt, k in kinds.items() if len(k) > 1]


def test_readme_vocabulary_table_matches():
    lines = README.read_text().splitlines()
    for concept, dest, shape, commands in VOCABULARY:
        row = next((line for line in lines if line.startswith(f"| {concept} |")), None)
        assert row is not None, f"README has no vocabulary row for {concept}"
        spelled = dest.upper().replace(".", "_") if shape == "positional" else f"--{dest}"
        assert f"`{spelled}`" in row, f"README's {concept} row does not spell it `{spelled}`"
        if shape == "flag":
            assert f"`--no-{dest}`" in row
        for name in commands:
            assert name in row, f"README's {concept} row does not list {name}"


def _parse(args):
    return build_parser().parse_args(rewrite_argv(args))


@pytest.mark.parametrize("args,expected", [
    (["--json"], True), (["--no-json"], False), (["--json", "false"], False), (["--json", "true"], True),
    (["--json=no"], False), (["--json=yes"], True), ([], False),
])
def test_boolean_flags_are_bare_with_a_negative_form(args, expected):
    cfg = _parse(["classify", *args, "exam.dcm", "--model", "artifacts/m"])
    assert cfg.classify.json is expected and cfg.classify.path == "exam.dcm"


def test_boolean_flags_in_nested_groups_and_config_files(tmp_path):
    cfg = _parse(["train", "--no-data.augment", "--resume", "--channels_last", "false"])
    assert (cfg.train.data.augment, cfg.train.resume, cfg.train.channels_last) == (False, True, False)
    config = tmp_path / "classify.yaml"
    config.write_text("path: exam.dcm\nmodel: artifacts/m\njson: true\nprogress: false\n")
    cfg = _parse(["classify", "--config", str(config)])
    assert (cfg.classify.json, cfg.classify.progress) == (True, False)
    assert _parse(["classify", "--config", str(config), "--no-json"]).classify.json is False


def test_fold_leaves_other_tokens_alone():
    flags = {"--json", "--data.augment"}
    assert fold_bool_values(["--json", "x.dcm", "--data.augment", "no", "--out", "true"], flags) == \
        ["--json", "x.dcm", "--no-data.augment", "--out", "true"]


def test_version_prints_the_kits_own(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"echoweave {importlib.metadata.version('echoweave')}"


@pytest.mark.parametrize("old,new", [
    (["export", "--checkpoint", "runs/a", "--out", "art"], ["export", "runs/a", "--out", "art"]),
    (["export", "--out", "art", "--checkpoint=runs/a"], ["export", "runs/a", "--out", "art"]),
    (["data", "synth", "data/p", "--num_patients", "3"], ["data", "synth", "--out", "data/p", "--patients", "3"]),
    (["evaluate", "runs/a", "--data_path", "/d", "--sampler", "spaced", "--windows", "2"],
     ["evaluate", "runs/a", "--data.path", "/d", "--data.sampler", "spaced", "--data.eval_windows", "2"]),
    (["bench", "artifacts/m", "--device", "android"], ["bench", "artifacts/m", "--target", "android"]),
])
def test_old_spellings_still_work_with_a_deprecation_line(old, new, capsys):
    assert rewrite_argv(old) == new
    err = capsys.readouterr().err
    assert err.startswith("echoweave: deprecated:") and "0.2" in err
    assert rewrite_argv(new) == new and capsys.readouterr().err == ""  # the new spelling is left alone
    assert _parse(old) == _parse(new)


def test_help_texts_name_the_files_commands_write(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "eval_metrics.json" in out and "eval_confusion.png" in out
    assert " metrics.json" not in out.replace("eval_metrics.json", "")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts_know_subcommands_and_flags(shell, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--print_completion", f"shtab-{shell}"])
    assert exc.value.code == 0
    script = capsys.readouterr().out
    assert "classify" in script and "no-json" in script and "data.path" in script  # fish: -l no-json
