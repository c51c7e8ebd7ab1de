# Shared helpers for scripts/*. Sourced, never run.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Machine-wide cache: the pinned PyTorch virtualenv (several GB) and the local base images' recipes
# are shared by every checkout on this machine, so a fresh clone (CI) does not download them again.
REPROBOX_CACHE="${REPROBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reprobox}"
TORCH_VERSION="2.13.0"
VENV="$REPROBOX_CACHE/venv-torch-$TORCH_VERSION"

say() { printf '%s\n' "setup: $*" >&2; }
die() {
    printf 'setup: error: %s\n' "$1" >&2
    [ -n "${2:-}" ] && printf '  (hint: %s)\n' "$2" >&2
    exit 1
}
