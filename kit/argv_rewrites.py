"""Command lines written for the older `echoweave` vocabulary, rewritten before parsing.

Each old spelling keeps working for one release and prints one ``deprecated`` line on stderr
naming the new one; the README's command-line section lists the current vocabulary. A
multi-stage recipe given to ``train --config`` is run as ``train --recipe`` (the only thing
such a file can mean), with a note.
"""
from __future__ import annotations

import sys
from contextvars import ContextVar
from pathlib import Path

REMOVED_IN = "0.2"

# (subcommand path) -> {old option: new option}
RENAMED_OPTIONS = {
    ("data", "synth"): {"--num_patients": "--patients"},
    ("evaluate",): {"--data_path": "--data.path", "--sampler": "--data.sampler", "--windows": "--data.eval_windows"},
    ("bench",): {"--device": "--target"},
}
# (subcommand path) -> old option whose value is now the positional argument
OPTION_NOW_POSITIONAL = {("export",): "--checkpoint"}
# (subcommand path) -> option that a leading positional argument now has to be given as
POSITIONAL_NOW_OPTION = {("data", "synth"): "--out"}


def _deprecated(old: str, new: str) -> None:
    print(f"echoweave: deprecated: {old} is now {new} (the old spelling goes in echoweave {REMOVED_IN})",
          file=sys.stderr)


def _command(args: list[str], table: dict) -> tuple[str, ...] | None:
    return next((path for path in table if tuple(args[:len(path)]) == path), None)


def _rename_options(args: list[str]) -> list[str]:
    path = _command(args, RENAMED_OPTIONS)
    if path is None:
        return args
    out = list(args[:len(path)])
    for token in args[len(path):]:
        name, eq, value = token.partition("=")
        new = RENAMED_OPTIONS[path].get(name)
        if new:
            cmd = " ".join(path)
            _deprecated(f"'echoweave {cmd} {name}'", f"'echoweave {cmd} {new}'")
            token = new + eq + value
        out.append(token)
    return out


def _option_to_positional(args: list[str]) -> list[str]:
    path = _command(args, OPTION_NOW_POSITIONAL)
    if path is None:
        return args
    option, n = OPTION_NOW_POSITIONAL[path], len(path)
    rest = list(args[n:])
    for i, token in enumerate(rest):
        name, eq, value = token.partition("=")
        if name == option and (eq or i + 1 < len(rest)):
            value = value if eq else rest[i + 1]
            del rest[i:i + (1 if eq else 2)]
            _deprecated(f"'echoweave {' '.join(path)} {option} X'", f"'echoweave {' '.join(path)} X'")
            return [*args[:n], value, *rest]
    return args


def _positional_to_option(args: list[str]) -> list[str]:
    path = _command(args, POSITIONAL_NOW_OPTION)
    n = len(path) if path else 0
    if path is None or len(args) <= n or args[n].startswith("-"):
        return args
    option = POSITIONAL_NOW_OPTION[path]
    _deprecated(f"'echoweave {' '.join(path)} X'", f"'echoweave {' '.join(path)} {option} X'")
    return [*args[:n], option, *args[n:]]


def _recipe_given_as_config(args: list[str]) -> list[str]:
    """``train --config RECIPE.yaml`` -> ``train --recipe RECIPE.yaml`` when the file is a recipe."""
    if args[:1] != ["train"]:
        return args
    for i, token in enumerate(args):
        name, eq, value = token.partition("=")
        if name != "--config" or not (eq or i + 1 < len(args)):
            continue
        value = value if eq else args[i + 1]
        if _is_recipe(value):
            print(f"echoweave: note: {value} is a multi-stage recipe; running it as "
                  f"'echoweave train --recipe {value}' (both stages)", file=sys.stderr)
            return [*args[:i], "--recipe", value, *args[i + (1 if eq else 2):]]
    return args


def _is_recipe(path: str) -> bool:
    import yaml

    p = Path(path)
    if not p.is_file():
        return False
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError):
        return False  # the parser reports unreadable configs itself
    return isinstance(data, dict) and "stage1" in data


def rewrite_argv(args: list[str]) -> list[str]:
    """The command line with every old spelling replaced by the current one.

    Args:
        args: Command-line tokens (without the program name).

    Returns:
        New tokens; each rewrite prints one line on stderr.
    """
    for rewrite in (_rename_options, _option_to_positional, _positional_to_option, _recipe_given_as_config):
        args = rewrite(args)
    return args


# The command line `echoweave.cli.main` is running, after rewriting: commands that must tell an
# option given on the command line from one left at its default read it (`given_options`).
CURRENT_ARGV: ContextVar[tuple[str, ...]] = ContextVar("echoweave_argv", default=())


def given_options(args: list[str] | tuple[str, ...] | None = None) -> set[str]:
    """Dotted names of the options written on a command line (``--data.path x`` -> ``data.path``).

    ``--no-data.augment`` counts as ``data.augment``; ``--key=value`` as ``key``. Defaults to the
    command line `echoweave.cli.main` is running (empty when called from Python).
    """
    names = set()
    for arg in CURRENT_ARGV.get() if args is None else args:
        if arg == "--":
            break  # what follows is positional
        if not arg.startswith("--"):
            continue
        name = arg[2:].split("=", 1)[0]
        names.add(name[3:] if name.startswith("no-") else name)
    return names
