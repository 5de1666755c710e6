"""echoweave: train, export, benchmark and embed an echocardiogram view classifier.

The distribution maps its top-level folders into this namespace:
`echoweave.edge` (torch-free runtime), `echoweave.train`, `echoweave.export`,
`echoweave.benchmarks`. Nothing heavy is imported here.
"""

__version__ = "0.1.0"
