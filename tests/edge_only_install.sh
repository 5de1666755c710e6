#!/usr/bin/env bash
# CI check of the edge-only install: `pip install -e '.[edge]'` into a fresh venv (no torch),
# then `echoweave --help` and `echoweave classify` on an ONNX artifact, and prove torch is absent.
#
#   tests/edge_only_install.sh ARTIFACT_DIR CLIP [OUT_JSON]
#
# The venv lives in $ECHOWEAVE_EDGE_VENV (default ~/.cache/echoweave/edge-venv) and is reused
# while the hash of pyproject's base dependencies + edge extra (and setup.py) is unchanged; the
# install is editable, so code changes need no reinstall. Prints "install_seconds=N" (0 = reused).
set -euo pipefail
ARTIFACT=${1:?usage: edge_only_install.sh ARTIFACT_DIR CLIP [OUT_JSON]}
CLIP=${2:?usage: edge_only_install.sh ARTIFACT_DIR CLIP [OUT_JSON]}
OUT_JSON=${3:-/dev/stdout}
ARTIFACT=$(realpath "$ARTIFACT")
CLIP=$(realpath "$CLIP")
[ "$OUT_JSON" = /dev/stdout ] || OUT_JSON=$(realpath "$OUT_JSON")
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
VENV=${ECHOWEAVE_EDGE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/echoweave/edge-venv}

KEY=$("$PYTHON" - "$REPO" <<'PY'
import hashlib, json, sys, tomllib
from pathlib import Path
repo = Path(sys.argv[1])
proj = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
facts = {"deps": proj["dependencies"], "edge": proj["optional-dependencies"]["edge"],
         "setup": (repo / "setup.py").read_text(), "python": sys.version.split()[0], "repo": str(repo)}
print(hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16])
PY
)

start=$(date +%s)
installed=0
if [ ! -f "$VENV/.edge-key" ] || [ "$(cat "$VENV/.edge-key")" != "$KEY" ]; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$REPO[edge]" >&2
    echo "$KEY" > "$VENV/.edge-key"
    installed=1
fi
end=$(date +%s)
echo "install_seconds=$(( installed ? end - start : 0 ))" >&2

# torch must not be importable: the edge extra may not pull it in (directly or transitively).
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "edge-only venv can import torch: the edge extra pulls it in" >&2
    exit 3
fi
for mod in tensorflow jax; do
    if "$VENV/bin/python" -c "import $mod" 2>/dev/null; then
        echo "edge-only venv can import $mod" >&2
        exit 3
    fi
done

cd "$REPO/.."  # not the repo root: the editable install, not the working tree on sys.path, must serve
"$VENV/bin/echoweave" --help > /dev/null
"$VENV/bin/echoweave" classify "$CLIP" --model "$ARTIFACT" --runtime onnxruntime --json > "$OUT_JSON"
