"""echoweave.edge: the small, torch-free library an app embeds.

Holds the clip type, readers (DICOM, video, frame folders), the sector mask, the numpy
preprocessing twin of training's eval transform, and (later) runtime adapters. Never import
torch here.
"""
from echoweave.edge.clip import Clip
from echoweave.edge.errors import ClipReadError, EchoweaveError

__all__ = ["Clip", "ClipReadError", "EchoweaveError"]
