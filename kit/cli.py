"""The `echoweave` console script: one command with subcommands, built by jsonargparse from
the typed signatures and docstrings of the functions in `echoweave.commands`.

    echoweave --help
    echoweave data inspect PATH [--json true]
    echoweave <subcommand> --config file.yaml | --print_config
"""
from __future__ import annotations

import sys

from jsonargparse import CLI

from echoweave.edge.errors import EchoweaveError
from echoweave.commands import bench as bench_cmd
from echoweave.commands import classify as classify_cmd
from echoweave.commands import data as data_cmd
from echoweave.commands import demo as demo_cmd
from echoweave.commands import export as export_cmd
from echoweave.commands import models as models_cmd
from echoweave.commands import train as train_cmd

COMMANDS = {
    "data": {"inspect": data_cmd.inspect, "synth": data_cmd.synth},
    "models": models_cmd.models,
    "train": train_cmd.train,
    "evaluate": train_cmd.evaluate,
    "kfold": train_cmd.kfold,
    "demo": demo_cmd.demo,
    "export": export_cmd.export,
    "classify": classify_cmd.classify,
    "bench": bench_cmd.bench,
}


def main(argv: list[str] | None = None):
    """Run the CLI (argv defaults to sys.argv[1:]).

    Errors echoweave raises on purpose (bad input, missing files, mismatched models) print as
    one line naming the file and the problem, with exit status 2, instead of a traceback.
    """
    try:
        return CLI(COMMANDS, args=sys.argv[1:] if argv is None else argv, prog="echoweave")
    except EchoweaveError as exc:
        print(f"echoweave: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
