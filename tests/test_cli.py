"""The `echoweave` command: every subcommand describes itself, configs resolve, help needs no torch."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from echoweave.cli import COMMANDS, main


def _leaves(tree, prefix=()):
    for name, value in tree.items():
        if name == "_help":  # a group's description
            continue
        if isinstance(value, dict):
            yield from _leaves(value, prefix + (name,))
        else:
            yield prefix + (name,)


@pytest.mark.parametrize("path", list(_leaves(COMMANDS)), ids=lambda p: " ".join(p))
def test_every_subcommand_has_help_with_documented_options(path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*path, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: echoweave" in out and "--config" in out and "--print_config" in out
    # Docstrings become help text: no bare function reprs.
    assert "<function" not in out


def test_help_works_without_torch():
    code = ("import sys; from echoweave.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'echoweave --help imported torch'\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr


def test_train_print_config_resolves_a_shipped_config(capsys):
    from echoweave.train.engine.recipe import CONFIG_DIR

    with pytest.raises(SystemExit):
        main(["train", "--config", str(CONFIG_DIR / "paper_stage2_tfw.yaml"), "--optim.epochs", "3",
              "--print_config"])
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["model"]["name"] == "tfw" and cfg["optim"]["epochs"] == 3 and cfg["optim"]["lr"] == 0.003
    assert cfg["init_from"] == "runs/paper/stage1"


def test_errors_print_one_line_and_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["data", "inspect", str(tmp_path / "missing")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("echoweave: error:") and "missing" in err and "Traceback" not in err
