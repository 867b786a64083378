#!/usr/bin/env bash
# Installs torch into the virtual environment of PYTHON ($1), the one dependency the lock leaves
# out: its version is pinned in requirements/torch.txt, its build is the user's choice.
#   - already installed at that version: nothing to do;
#   - a wheel of that version where pip already finds files without an index (pip's find-links,
#     as on machines that carry the CPU wheel on disk): that one;
#   - otherwise from TORCH_INDEX (default: PyTorch's CPU index; set it to a CUDA index for a GPU).
# torch's own dependencies are in the lock, so torch alone is installed here (--no-deps).
set -euo pipefail
py="$1"
spec="$(grep -v '^#' "$(dirname "$0")/../requirements/torch.txt" | head -n1)"
version="${spec#torch==}"
version="${version%%+*}"
index="${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
have="$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
if [ "${have%%+*}" = "$version" ]; then
    exit 0
fi
if "$py" -m pip install -q --no-deps --no-index "torch==$version" 2>/dev/null; then
    echo "torch $version installed from local wheels"
    exit 0
fi
echo "installing torch $version from $index"
"$py" -m pip install -q --no-deps --index-url "$index" "torch==$version"
