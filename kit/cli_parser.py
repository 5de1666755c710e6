"""The parser class of the `echoweave` CLI: jsonargparse, with switches that read like switches.

jsonargparse turns a ``bool`` parameter into ``--json {true,false}``, which needs a value.
`CliParser` makes every boolean option a bare flag with a negative form instead:

    echoweave classify loop.dcm --model m --json       # True
    echoweave classify loop.dcm --model m --no-json    # False
    echoweave classify loop.dcm --model m --json false # still accepted: folded to --no-json

Config files are unaffected (``json: true``), and ``--print_config`` prints the same keys.
"""
from __future__ import annotations

import re

from jsonargparse import ActionYesNo, ArgumentParser
from jsonargparse._core import ArgumentGroup  # the group class jsonargparse builds groups from

NEGATIVE_PREFIX = "no-"
_TRUE, _FALSE = {"true", "yes"}, {"false", "no"}


class _BareBoolFlags:
    """Mixin for parsers and groups: `bool` options become ``--x`` / ``--no-x`` flags."""

    def add_argument(self, *args, **kwargs):
        if kwargs.get("type") is bool and "action" not in kwargs and args and str(args[0]).startswith("--"):
            del kwargs["type"]
            kwargs["action"] = ActionYesNo(no_prefix=NEGATIVE_PREFIX)
        return super().add_argument(*args, **kwargs)


class CliGroup(_BareBoolFlags, ArgumentGroup):
    """Argument group (dataclass fields such as ``--data.augment``) with bare boolean flags."""


class CliParser(_BareBoolFlags, ArgumentParser):
    """jsonargparse parser whose boolean options are bare flags with a ``--no-`` form.

    `parse_args` first folds the value spelling (``--json false``, ``--json=true``) into the
    bare one, so commands written for the older CLI keep working.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._group_class = CliGroup  # nested dataclass options are added through groups

    def parse_args(self, args=None, *rest, **kwargs):
        """Parse ``args`` after folding ``--flag true|false`` into ``--flag`` / ``--no-flag``."""
        if args is not None:
            args = fold_bool_values(list(args), bool_options(self))
        return super().parse_args(args, *rest, **kwargs)


def iter_parsers(parser: ArgumentParser, path: tuple[str, ...] = ()):
    """Yield ``(subcommand path, parser)`` for ``parser`` and every subcommand below it."""
    yield path, parser
    subcommands = getattr(parser, "_subcommands_action", None)
    if subcommands is not None:
        for name, sub in subcommands._name_parser_map.items():
            yield from iter_parsers(sub, path + (name,))


def bool_options(parser: ArgumentParser) -> set[str]:
    """Positive option strings (``--json``, ``--data.augment``) of every boolean flag under ``parser``."""
    out = set()
    for _, p in iter_parsers(parser):
        out.update(a.option_strings[0] for a in p._actions if isinstance(a, ActionYesNo))
    return out


def fold_bool_values(args: list[str], flags: set[str]) -> list[str]:
    """``--flag true`` / ``--flag=yes`` -> ``--flag``; ``--flag false`` / ``--flag=no`` -> ``--no-flag``.

    Args:
        args: Command-line tokens.
        flags: Positive option strings of the boolean flags (`bool_options`).

    Returns:
        The tokens with every boolean value folded into the flag's bare or negative spelling.
    """
    out, i = [], 0
    while i < len(args):
        token = args[i]
        name, eq, value = token.partition("=")
        if name in flags:
            if not eq and i + 1 < len(args) and args[i + 1].lower() in _TRUE | _FALSE:
                value, i = args[i + 1], i + 1
            if value.lower() in _FALSE:
                token = re.sub("^--", "--" + NEGATIVE_PREFIX, name)
            elif value.lower() in _TRUE or not eq:
                token = name
            # anything else (--json=maybe) is left for the parser to reject
        out.append(token)
        i += 1
    return out
