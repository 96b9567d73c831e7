#!/usr/bin/env bash
# Build the Linux desktop bundle from this checkout:
#   1. a clean build venv (build/venv, never the developer .venv): CPU torch, the app's runtime
#      dependencies (pyproject.toml), PyInstaller (installer/requirements.txt); remade when any
#      of those change;
#   2. PyInstaller one-folder build (installer/faketagger.spec) -> dist/FakeTagger/;
#   3. desktop integration files and icons -> dist/FakeTagger/;
#   4. dist/FakeTagger-VERSION-linux-ARCH.tar.xz (xz: 301 MB against gzip's 386 MB for this
#      bundle, docs/INSTALL.md round F; every Linux tar unpacks it).
#
# Usage: installer/build.sh [--clean]      (--clean: remake the build venv from scratch)
# Environment:
#   PY               Python 3.11 to make the venv with (default python3.11)
#   BUILD_VENV       where the build venv lives (default build/venv)
#   TORCH_SPEC       torch requirement (default torch==2.13.0; must be a CPU build unless
#                    FAKETAGGER_ALLOW_CUDA=1, see docs/INSTALL.md "CUDA variant")
#   TORCH_INDEX_URL  extra index for torch only, e.g. the PyTorch CPU wheel index in CI
#                    (PyPI's Linux torch wheels are the CUDA build)
# Times and sizes are printed at the end (docs/INSTALL.md records them).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-python3.11}
VENV=${BUILD_VENV:-build/venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
NICE=${NICE:-nice -n 10}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' engine/__init__.py)
NAME="FakeTagger-$VERSION-linux-$(uname -m)"
DIST=dist/FakeTagger

if [[ "${1:-}" == "--clean" ]]; then rm -rf "$VENV"; fi

mkdir -p build
t_start=$(date +%s)
# -- 1. build venv ---------------------------------------------------------------------------
stamp="$VENV/.installed-$(cat pyproject.toml installer/requirements.txt \
        <(echo "$TORCH_SPEC ${TORCH_INDEX_URL:-}") | sha1sum | cut -c1-12)"
if [[ ! -f "$stamp" ]]; then
    echo "== build venv: $VENV"
    command -v "$PY" >/dev/null || { echo "need $PY on PATH (or PY=python3)"; exit 1; }
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # shellcheck disable=SC2086  # TORCH_INDEX_URL adds two words or none
    "$VENV/bin/python" -m pip install -q "$TORCH_SPEC" \
        ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
    # The runtime dependencies exactly as pyproject.toml lists them (not the dev/bench extras).
    "$VENV/bin/python" -c 'import tomllib; print("\n".join(
        tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > "$VENV/runtime-requirements.txt"
    "$VENV/bin/python" -m pip install -q -r "$VENV/runtime-requirements.txt" \
        -r installer/requirements.txt
    "$VENV/bin/python" -m pip install -q --no-deps facenet-pytorch==2.6.0
    "$VENV/bin/python" -m pip freeze > build/venv-freeze.txt
    touch "$stamp"
fi
cuda=$("$VENV/bin/python" -c "import torch; print(torch.version.cuda or '')")
if [[ -n "$cuda" && "${FAKETAGGER_ALLOW_CUDA:-0}" != 1 ]]; then
    echo "error: the build venv has a CUDA torch ($cuda): set TORCH_SPEC/TORCH_INDEX_URL to a CPU"
    echo "build, or FAKETAGGER_ALLOW_CUDA=1 for the CUDA variant (docs/INSTALL.md)"
    exit 1
fi
[[ -n "$cuda" ]] && NAME="$NAME-cuda$cuda"   # the optional CUDA variant (docs/INSTALL.md)
if "$VENV/bin/python" -c "import torchvision" 2>/dev/null; then
    echo "error: torchvision is in the build venv; the bundle must not carry it"; exit 1
fi
t_venv=$(date +%s)

# Qt's X11 plugin links two small X libraries that minimal desktops lack: PyInstaller bundles
# them when this machine has them (Debian/Ubuntu: libxcb-icccm4 libxcb-keysyms1).
for lib in libxcb-icccm.so.4 libxcb-keysyms.so.1; do
    ldconfig -p 2>/dev/null | grep -q "$lib" \
        || echo "warning: $lib not found: the bundle will need it on the user's machine"
done

# -- 2. freeze -------------------------------------------------------------------------------
echo "== PyInstaller"
rm -rf "$DIST" dist/FakeTagger.app build/pyinstaller
$NICE "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller installer/faketagger.spec
t_freeze=$(date +%s)

# -- 3. desktop integration ------------------------------------------------------------------
"$VENV/bin/python" installer/make_icons.py build/icons >/dev/null
for size in 16 24 32 48 64 128 256 512; do
    install -D -m 644 "build/icons/faketagger-$size.png" \
        "$DIST/share/icons/hicolor/${size}x${size}/apps/faketagger.png"
done
install -D -m 644 assets/icons/app.svg "$DIST/share/icons/hicolor/scalable/apps/faketagger.svg"
install -D -m 644 installer/linux/faketagger.desktop "$DIST/share/applications/faketagger.desktop"
install -D -m 644 installer/linux/faketagger.metainfo.xml \
    "$DIST/share/metainfo/faketagger.metainfo.xml"
install -m 755 installer/linux/install-desktop-entry.sh "$DIST/install-desktop-entry.sh"
install -m 644 installer/linux/README.txt "$DIST/README.txt"

# -- 4. archive ------------------------------------------------------------------------------
echo "== archive"
rm -f "dist/$NAME.tar.gz" "dist/$NAME.tar.xz" "dist/$NAME.tar.xz.part"
$NICE tar -C dist --transform "s,^FakeTagger,$NAME," -cf - FakeTagger \
    | $NICE xz -T0 -6 > "dist/$NAME.tar.xz.part"
mv "dist/$NAME.tar.xz.part" "dist/$NAME.tar.xz"  # a killed build leaves no half archive
t_end=$(date +%s)

echo
echo "bundle:   $DIST ($(du -sm "$DIST" | cut -f1) MB unpacked)"
echo "archive:  dist/$NAME.tar.xz ($(( $(stat -c %s "dist/$NAME.tar.xz") / 1048576 )) MB)"
echo "time:     venv $((t_venv - t_start)) s, freeze $((t_freeze - t_venv)) s," \
     "integration + archive $((t_end - t_freeze)) s; total $((t_end - t_start)) s"
