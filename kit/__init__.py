"""echoweave: train, export, benchmark and embed an echocardiogram view classifier.

The distribution maps its top-level folders into this namespace:
`echoweave.edge` (torch-free runtime), `echoweave.train`, `echoweave.export`,
`echoweave.benchmarks`. Nothing heavy is imported here.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("echoweave")  # pyproject.toml is the one place the version is written
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
