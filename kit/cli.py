"""The `echoweave` console script: one command with subcommands, built by jsonargparse from
the typed signatures and docstrings of the functions in `echoweave.commands`.

    echoweave --help | --version | --print_completion shtab-bash
    echoweave data inspect PATH [--json]
    echoweave <subcommand> --config file.yaml | --print_config

The vocabulary (the same name and shape for the same thing in every subcommand) is in the
README's command-line section; boolean options are bare flags with a ``--no-`` form
(`echoweave.cli_parser`); old spellings still accepted are in `echoweave.argv_rewrites`.
"""
from __future__ import annotations

import os
import sys

from jsonargparse import CLI, auto_parser, set_parsing_settings

from echoweave import __version__
from echoweave.argv_rewrites import CURRENT_ARGV, rewrite_argv
from echoweave.cli_parser import CliParser
from echoweave.edge.errors import EchoweaveError
from echoweave.commands import bench as bench_cmd
from echoweave.commands import classify as classify_cmd
from echoweave.commands import data as data_cmd
from echoweave.commands import demo as demo_cmd
from echoweave.commands import export as export_cmd
from echoweave.commands import models as models_cmd
from echoweave.commands import train as train_cmd
from echoweave.commands import workflow as workflow_cmd

COMMANDS = {
    "data": {"_help": "Look at datasets on disk and write synthetic ones.",
             "inspect": data_cmd.inspect, "synth": data_cmd.synth},
    "models": models_cmd.models,
    "train": train_cmd.train,
    "evaluate": train_cmd.evaluate,
    "kfold": train_cmd.kfold,
    "demo": demo_cmd.demo,
    "export": export_cmd.export,
    "classify": classify_cmd.classify,
    "bench": bench_cmd.bench,
    "workflow": {"_help": "Full-length scans: predicted workflows against their ground truth.",
                 "compare": workflow_cmd.compare},
}

# `echoweave --print_completion shtab-bash` (zsh, fish, ...) prints a completion script (shtab).
set_parsing_settings(add_print_completion_argument=True)
# How the parser is built, shared by `main` and `build_parser`.
PARSER_OPTIONS = {"prog": "echoweave", "parser_class": CliParser, "version": __version__}


def build_parser():
    """The `echoweave` argument parser that `main` runs, without running anything (tests walk it)."""
    return auto_parser(COMMANDS, **PARSER_OPTIONS)


def main(argv: list[str] | None = None):
    """Run the CLI (argv defaults to sys.argv[1:]).

    Errors echoweave raises on purpose (bad input, missing files, mismatched models) print as
    one line naming the file and the problem, with exit status 2, instead of a traceback; so do
    the ValueErrors of the library's own checks (``models --backbone foo``) and OSErrors (a
    folder that cannot be written), prefixed with the subcommand. ``ECHOWEAVE_TRACEBACK=1`` shows
    the traceback instead.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    token = None
    try:
        args = rewrite_argv(args)
        token = CURRENT_ARGV.set(tuple(args))
        return CLI(COMMANDS, args=args, **PARSER_OPTIONS)
    except (EchoweaveError, ValueError, OSError) as exc:
        if os.environ.get("ECHOWEAVE_TRACEBACK"):
            raise
        where = "" if isinstance(exc, EchoweaveError) else f"{_subcommand(args)}: "
        print(f"echoweave: error: {where}{' '.join(str(exc).split()) or type(exc).__name__}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if token is not None:
            CURRENT_ARGV.reset(token)


def _subcommand(args: list[str]) -> str:
    words = [a for a in args[:2] if not a.startswith("-")]
    return " ".join(words[:2] if words[:1] in (["data"], ["workflow"]) else words[:1]) or "echoweave"


if __name__ == "__main__":
    main()
