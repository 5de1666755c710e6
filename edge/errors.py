"""Errors that name the file and the problem, so a user can act on them."""
from __future__ import annotations

from pathlib import Path


class EchoweaveError(Exception):
    """Base class for every error echoweave raises on purpose."""


class ClipReadError(EchoweaveError, ValueError):
    """A clip (DICOM, video, frame folder, annotation) could not be read or is invalid.

    Args:
        path: the file or folder at fault.
        problem: what is wrong with it, in words a user understands.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ArtifactError(EchoweaveError):
    """An exported artifact passed its sha256 check but its runtime cannot load or run it
    (a corrupt program, a method pointing at the wrong file, shapes that disagree with the
    manifest). The message names the artifact folder, the artifact id and its file."""
