#!/usr/bin/env bash
# NVIDIA Triton with its onnxruntime backend, built offline, to serve a model repository beside
# `zoo serve` (the conformance tests and the load benchmark's peers use it).
#
#   bash scripts/triton.sh build              assemble Triton in .triton/ (idempotent; about a minute)
#   bash scripts/triton.sh available          where the build would take the sources from, on one line;
#                                             exit 1, saying why, where they cannot be had
#   bash scripts/triton.sh serve REPO [--port P] [tritonserver options...]
#                                             HTTP on 127.0.0.1:P (8000), gRPC on P+1, metrics on P+2
#
# What goes into .triton/ (git-ignored):
#   venv/                 nvidia-pytriton (pinned), whose wheel carries a real tritonserver binary
#                         (Triton 2.51.0) with its python backend
#   backends/onnxruntime/ Triton's onnxruntime backend, built here from the r24.10 sources, beside
#                         libonnxruntime.so.1 and a link to pytriton's libtritonserver
#   backends/python/      pytriton's python backend
# The sources: $ZOO_TRITON_SRC (a folder or the tarball), else ../shared/triton/triton-src-r24.10.tar.gz
# beside the checkout, else `git clone --branch r24.10` of the four repositories. libonnxruntime.so.1:
# $ZOO_ORT_LIB, else the pinned npm package onnxruntime-node. cmake, g++ and rapidjson-dev are
# installed with apt-get where they are missing and that is allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEST="$ROOT/.triton"
PYTRITON_VERSION=0.7.0       # ships tritonserver 2.51.0 = Triton's r24.10 branch
ORT_NODE_VERSION=1.30.0      # its libonnxruntime.so.1 serves the backend built on the 1.19 C API header
BRANCH=r24.10

fail() { echo "Error: $*" >&2; exit 1; }

site_packages() { "$DEST/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

tritonserver_binary() { echo "$(site_packages)/pytriton/tritonserver/bin/tritonserver"; }

install_pytriton() {
    [ -x "$DEST/venv/bin/python" ] || python3 -m venv "$DEST/venv" || fail "cannot create $DEST/venv (python3 -m venv)"
    if ! "$DEST/venv/bin/python" -c "import pytriton" 2>/dev/null; then
        echo "installing nvidia-pytriton==$PYTRITON_VERSION into $DEST/venv"
        "$DEST/venv/bin/python" -m pip install -q "nvidia-pytriton==$PYTRITON_VERSION" \
            || fail "cannot install nvidia-pytriton==$PYTRITON_VERSION from PyPI"
    fi
    [ -x "$(tritonserver_binary)" ] || fail "nvidia-pytriton==$PYTRITON_VERSION has no tritonserver binary here"
}

build_tools() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v g++ >/dev/null || missing+=(g++)
    [ -f /usr/include/rapidjson/document.h ] || missing+=(rapidjson-dev)
    [ ${#missing[@]} -eq 0 ] && return
    command -v apt-get >/dev/null || fail "missing build tools: ${missing[*]} (install them; no apt-get here)"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
    echo "installing ${missing[*]} with apt-get"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } \
        >"$DEST/apt.log" 2>&1 || fail "cannot install ${missing[*]} with apt-get (see $DEST/apt.log)"
}

# The four source trees in $DEST/src (onnxruntime_backend, core, common, backend) and the C API header.
sources() {
    local src="$DEST/src"
    [ -f "$src/onnxruntime_backend/CMakeLists.txt" ] && return
    rm -rf "$src"; mkdir -p "$src"
    local given="${ZOO_TRITON_SRC:-}" shared="$ROOT/../shared/triton/triton-src-$BRANCH.tar.gz"
    if [ -n "$given" ] && [ -d "$given" ]; then
        cp -r "$given"/. "$src"/
    elif [ -n "$given" ]; then
        [ -f "$given" ] || fail "ZOO_TRITON_SRC=$given is neither a folder nor a file"
        tar xzf "$given" -C "$src" || fail "cannot unpack $given"
    elif [ -f "$shared" ]; then
        tar xzf "$shared" -C "$src"
    else
        echo "no source tarball: cloning Triton's repositories at $BRANCH"
        for repo in onnxruntime_backend core common backend; do
            git clone -q --depth 1 --branch "$BRANCH" "https://github.com/triton-inference-server/$repo" "$src/$repo" \
                || fail "cannot clone $repo (no network?): set ZOO_TRITON_SRC to the sources"
        done
    fi
    [ -f "$src/onnxruntime_backend/CMakeLists.txt" ] || fail "the sources lack onnxruntime_backend/ (ZOO_TRITON_SRC?)"
    # common's tests link GTest without finding it, and nothing here needs them.
    sed -i 's/^\(\s*\)add_subdirectory(test)/\1# add_subdirectory(test)/' "$src/common/src/CMakeLists.txt"
}

# libonnxruntime.so.1 and the header it is built against, in $DEST/ort/{lib,include}.
onnxruntime_library() {
    local lib="$DEST/ort/lib"
    mkdir -p "$lib" "$DEST/ort/include"
    if [ ! -f "$lib/libonnxruntime.so.1" ]; then
        if [ -n "${ZOO_ORT_LIB:-}" ]; then
            [ -f "$ZOO_ORT_LIB" ] || fail "ZOO_ORT_LIB=$ZOO_ORT_LIB: no such file"
            cp "$ZOO_ORT_LIB" "$lib/libonnxruntime.so.1"
        else
            command -v npm >/dev/null || fail "no npm to fetch onnxruntime-node: set ZOO_ORT_LIB to a libonnxruntime.so.1"
            local tmp; tmp=$(mktemp -d)
            (cd "$tmp" && npm pack -q "onnxruntime-node@$ORT_NODE_VERSION" >/dev/null 2>&1) \
                || fail "cannot fetch onnxruntime-node@$ORT_NODE_VERSION with npm: set ZOO_ORT_LIB"
            tar xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
            cp "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$lib/"
            rm -rf "$tmp"
        fi
    fi
    ln -sf libonnxruntime.so.1 "$lib/libonnxruntime.so"  # what the backend's CMake looks for
    local header
    header=$(find "$DEST/src" -name onnxruntime_c_api.h | head -1)
    [ -n "$header" ] || fail "no onnxruntime_c_api.h in the sources"
    cp "$header" "$DEST/ort/include/"
}

build_backend() {
    local backend="$DEST/backends/onnxruntime"
    [ -f "$backend/libtriton_onnxruntime.so" ] && return
    local src="$DEST/src" build="$DEST/build"
    rm -rf "$build"; mkdir -p "$build" "$backend"
    echo "building Triton's onnxruntime backend (about 30 s)"
    cmake -S "$src/onnxruntime_backend" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$build/install" \
        -DTRITON_ENABLE_GPU=OFF -DTRITON_ENABLE_ONNXRUNTIME_TENSORRT=OFF -DTRITON_ENABLE_ONNXRUNTIME_OPENVINO=OFF \
        -DTRITON_ONNXRUNTIME_INCLUDE_PATHS="$DEST/ort/include" -DTRITON_ONNXRUNTIME_LIB_PATHS="$DEST/ort/lib" \
        -DFETCHCONTENT_FULLY_DISCONNECTED=ON -DFETCHCONTENT_SOURCE_DIR_REPO-COMMON="$src/common" \
        -DFETCHCONTENT_SOURCE_DIR_REPO-CORE="$src/core" -DFETCHCONTENT_SOURCE_DIR_REPO-BACKEND="$src/backend" \
        >"$DEST/cmake.log" 2>&1 || fail "cmake failed (see $DEST/cmake.log)"
    cmake --build "$build" --target install -j "$(nproc)" >"$DEST/make.log" 2>&1 || fail "the build failed (see $DEST/make.log)"
    cp "$build/install/backends/onnxruntime/libtriton_onnxruntime.so" "$backend/"
}

assemble() {
    local sp backend="$DEST/backends/onnxruntime"
    sp=$(site_packages)
    cp "$DEST/ort/lib/libonnxruntime.so.1" "$backend/"
    # The backend asks for libtritonserver.so; pytriton names its copy with a hash.
    local server_lib
    server_lib=$(ls "$sp"/nvidia_pytriton.libs/libtritonserver-*.so 2>/dev/null | head -1)
    [ -n "$server_lib" ] || fail "no libtritonserver in nvidia-pytriton"
    ln -sf "$server_lib" "$backend/libtritonserver.so"
    rm -rf "$DEST/backends/python"
    cp -r "$sp/pytriton/tritonserver/backends/python" "$DEST/backends/python"
    local stub="$sp/pytriton/tritonserver/python_backend_stubs/$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')/triton_python_backend_stub"
    [ -f "$stub" ] && cp "$stub" "$DEST/backends/python/"
    local usage
    usage=$("$(tritonserver_binary)" --help 2>&1 || true)  # --help exits 1 after printing its usage
    [[ "$usage" == *"Usage: tritonserver"* ]] || fail "tritonserver does not run here: ${usage%%$'\n'*}"
    echo "Triton is ready: bash scripts/triton.sh serve REPO"
}

build() {
    mkdir -p "$DEST"
    install_pytriton
    build_tools
    sources
    onnxruntime_library
    build_backend
    assemble
}

available() {
    local given="${ZOO_TRITON_SRC:-}" shared="$ROOT/../shared/triton/triton-src-$BRANCH.tar.gz"
    if [ -f "$DEST/src/onnxruntime_backend/CMakeLists.txt" ]; then
        echo "the sources unpacked in $DEST/src"
    elif [ -n "$given" ]; then
        echo "ZOO_TRITON_SRC=$given"
    elif [ -f "$shared" ]; then
        echo "$shared"
    elif timeout 15 git ls-remote --exit-code --heads "https://github.com/triton-inference-server/core" "$BRANCH" \
            >/dev/null 2>&1; then
        echo "a clone of Triton's repositories at $BRANCH"
    else
        echo "no Triton sources: set ZOO_TRITON_SRC, or put triton-src-$BRANCH.tar.gz in ../shared/triton/ (github.com cannot be reached to clone them)"
        return 1
    fi
}

serve() {
    [ $# -ge 1 ] || fail "usage: bash scripts/triton.sh serve REPO [--port P] [tritonserver options...]"
    local repo="$1"; shift
    [ -d "$repo" ] || fail "$repo: no such model repository"
    [ -f "$DEST/backends/onnxruntime/libtriton_onnxruntime.so" ] || fail "Triton is not built: run bash scripts/triton.sh build"
    local port=8000
    if [ "${1:-}" = "--port" ]; then
        [ $# -ge 2 ] || fail "--port needs a number"
        port="$2"; shift 2
    fi
    # exec: tritonserver itself gets SIGTERM, unloads the models and exits 0.
    exec "$(tritonserver_binary)" --model-repository="$(cd "$repo" && pwd)" --backend-directory="$DEST/backends" \
        --http-address=127.0.0.1 --http-port="$port" --grpc-address=127.0.0.1 --grpc-port=$((port + 1)) \
        --metrics-address=127.0.0.1 --metrics-port=$((port + 2)) --log-verbose=0 "$@"
}

case "${1:-}" in
    build) build ;;
    available) available ;;
    serve) shift; serve "$@" ;;
    *) echo "usage: bash scripts/triton.sh build | available | serve REPO [--port P] [tritonserver options...]" >&2; exit 2 ;;
esac
