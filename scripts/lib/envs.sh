# Creates the project's Python environments (sourced by run-tests, run-demo and the build scripts).
#   backend/.venv          the backend: uv project, locked by backend/uv.lock (torch, gsplat, SAM, ...)
#   .venv-blender-4.2/5.0  Blender as a Python module (bpy from PyPI) with the numpy Blender bundles
# Every step is idempotent and fast once done.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BLENDER_VERSIONS="${CLICKGAUSS_BLENDER_VERSIONS:-4.2 5.0}"

ensure_uv() {
    if ! command -v uv >/dev/null 2>&1; then
        echo "[setup] installing uv (the Python package manager the project uses)"
        python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
        export PATH="$HOME/.local/bin:$PATH"
    fi
}

ensure_backend_env() {
    ensure_uv
    echo "[setup] backend environment (backend/.venv, from backend/uv.lock)"
    (cd "$REPO_ROOT/backend" && uv sync --locked --python 3.11 --quiet)
}

ensure_blender_env() {  # $1 = 4.2 | 5.0
    ensure_uv
    local env="$REPO_ROOT/.venv-blender-$1"
    local req="$REPO_ROOT/tests/blender/requirements-bpy-$1.txt"
    if [ ! -f "$env/.installed" ] || ! cmp -s "$req" "$env/.installed"; then
        echo "[setup] Blender $1 environment ($env: bpy from PyPI)"
        uv venv --quiet --allow-existing --python 3.11 "$env"
        VIRTUAL_ENV="$env" uv pip install --quiet -r "$req"
        cp "$req" "$env/.installed"
    fi
}

ensure_blender_envs() {
    for version in $BLENDER_VERSIONS; do ensure_blender_env "$version"; done
}
