"""Maps the top-level folders into the `echoweave` namespace (metadata lives in pyproject.toml).

`kit/` holds the package root and the CLI; `edge/`, `train/`, `export/` and `benchmarks/` become
`echoweave.edge`, `echoweave.train`, ... Subpackages are found automatically.
"""
from setuptools import find_packages, setup

ROOTS = {
    "kit": "echoweave",
    "edge": "echoweave.edge",
    "train": "echoweave.train",
    "export": "echoweave.export",
    "benchmarks": "echoweave.benchmarks",
}

packages, package_dir = [], {}
for folder, name in ROOTS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
