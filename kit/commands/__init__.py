"""Subcommand functions of the `echoweave` CLI, one light module per area.

Every module here imports only the standard library, numpy and `echoweave.edge` at import time:
heavy modules (torch, converters) are imported inside the functions, so `echoweave --help`
works in an edge-only install.
"""
