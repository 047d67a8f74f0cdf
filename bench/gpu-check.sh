#!/usr/bin/env bash
# gpu-check.sh: the WebGPU backend on an NVIDIA GPU, measured against wasm on the same machine.
# Prints (and writes to $OUT/gpu-check.log and $OUT/gpu-check.jsonl when OUT names a folder):
#   - the machine, the GPU (nvidia-smi), the Vulkan loader and driver manifest Dawn will use;
#   - the adapter tfjs runs on: name, vendor, discrete or not, binding and buffer limits;
#   - matmul GFLOP/s at 1024³, 2048³ and 4096³ on webgpu (bench/train.ts --matmul);
#   - config B (GPT-2 vocabulary, d 256, 4 layers, context 128, batch 8) training tokens/s, and
#     generation tokens/s at batch 1 and 8 (bench/generate.ts), on webgpu and on wasm;
#   - a summary table of webgpu ÷ wasm.
# Measured on an NVIDIA H200 (driver 580.159.04) on 2026-12-04: README's "On an NVIDIA GPU".
#
# The GPU machine needs no network. Two ways to bring the code:
#   a) a copy of the project with a complete node_modules (npm ci ran somewhere with the same
#      OS and architecture): the benches run through tsx, as here;
#   b) .gpucheck/, made HERE by `bash bench/gpu-check.sh pack` (about 30 MB; git-ignored): the two
#      benches bundled into plain JavaScript, the runtime part of node_modules (tfjs, Dawn's
#      linux-x64 dawn.node), Debian's Vulkan loader placed beside dawn.node (Dawn looks there
#      first, so no root install is needed), the libraries NVIDIA's Vulkan driver may lack, and
#      this machine's node binary for a GPU machine without Node ≥ 20. Needs apt (apt-get update once).
#      NVIDIA's Vulkan driver (libGLX_nvidia.so.0) dlopens GLVND's libEGL.so.1 at vkCreateInstance:
#      without it the loader says "Could not get 'vkCreateInstance'" and Dawn finds no adapter.
#      The packed libEGL/libGLX/libGLdispatch go on LD_LIBRARY_PATH where the system lacks them.
#
#   bash bench/gpu-check.sh pack        # here: write .gpucheck/
#   bash bench/gpu-check.sh             # there, from the project root: the check (a few minutes)
#   bash bench/gpu-check.sh lavapipe    # here, optional: a dry run on lavapipe with small sizes
#                                       # (PACKED=1 makes it use .gpucheck/ as the GPU machine would)
# Knobs: QUICK=1 skips the wasm runs; STEPS (default 5) training steps; LENGTHS (default 100,500)
# new tokens; GLASSBOX_DAWN_OPTIONS="backend=vulkan;adapter=..." goes to Dawn's create().
set -u
MODE=${1:-check}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=$ROOT/.gpucheck

if [ "$MODE" = pack ]; then
  set -euo pipefail
  cd "$ROOT"
  NM=$ROOT/node_modules
  [ -f "$NM/webgpu/dist/linux-x64/dawn.node" ] || { echo "pack: node_modules/webgpu is missing: run npm ci first"; exit 1; }
  rm -rf "$G"; mkdir -p "$G"
  T=$(mktemp -d); A=$T/app; mkdir -p "$A/node_modules" "$T/debs" "$A/vklibs"
  # 1. The benches as plain JavaScript: everything but tfjs and webgpu bundled in.
  for b in train generate; do
    "$NM/.bin/esbuild" "bench/$b.ts" --bundle --platform=node --format=esm --target=node20 --log-level=warning \
      --external:@tensorflow/* --external:webgpu --outfile="$A/bench-$b.mjs"
  done
  # 2. What those bundles load at run time: tfjs's Node builds and their dependencies, and
  #    webgpu's Linux x64 binary only (the package holds five platforms, 130 MB).
  for p in "$NM"/@tensorflow/*/; do
    n=$(basename "$p"); case "$n" in tfjs-node|tfjs-node-gpu) continue ;; esac
    mkdir -p "$A/node_modules/@tensorflow/$n/dist"; cp "$p/package.json" "$A/node_modules/@tensorflow/$n/"
    cp "$p"/dist/*.node.js "$A/node_modules/@tensorflow/$n/dist/" 2>/dev/null || true
    cp "$p"/dist/*.wasm "$A/node_modules/@tensorflow/$n/dist/" 2>/dev/null || true
  done
  for d in long seedrandom node-fetch whatwg-url tr46 webidl-conversions; do
    [ -d "$NM/$d" ] && (cd "$NM" && tar cf - --exclude='*.map' --exclude='*.d.ts' --exclude='*.md' "$d") | (cd "$A/node_modules" && tar xf -)
  done
  W=$A/node_modules/webgpu; mkdir -p "$W/dist/linux-x64"
  cp "$NM/webgpu/package.json" "$NM/webgpu/index.js" "$W/"; cp "$NM/webgpu/dist/linux-x64/dawn.node" "$W/dist/linux-x64/"
  # 3. Debian's Vulkan loader (beside dawn.node) and the X11/GLVND client libraries NVIDIA's
  #    driver library (libGLX_nvidia.so.0) links against, for a machine that lacks them.
  (cd "$T/debs" && apt-get -qq -o APT::Sandbox::User=root download libvulkan1 libglvnd0 libegl1 libglx0 libx11-6 libx11-data libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0) \
    || { echo "pack: apt-get download failed: run apt-get update once, then pack again"; exit 1; }
  for f in "$T"/debs/*.deb; do dpkg -x "$f" "$T/debs/x"; done
  cp -a "$T"/debs/x/usr/lib/*-linux-gnu/*.so* "$A/vklibs/"
  cp -L "$A/vklibs/libvulkan.so.1" "$W/dist/linux-x64/libvulkan.so.1"
  (cd "$T" && tar cJf "$G/app.tar.xz" app)
  [ "${WITH_NODE:-1}" = 1 ] && xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > "$G/node.xz"
  rm -rf "$T"
  du -sh "$G"/*; du -sh "$G"
  echo "pack done: bring .gpucheck/ with the project to the GPU machine and run bash bench/gpu-check.sh there"
  exit 0
fi

LAVAPIPE=0
if [ "$MODE" = lavapipe ]; then
  LAVAPIPE=1
  bash "$ROOT/.ci/lavapipe.sh" >/dev/null || exit 1
  export GLASSBOX_LAVAPIPE=$ROOT/.lavapipe
fi

W=${GPUCHECK_DIR:-$(mktemp -d)}; mkdir -p "$W"
LOG=${OUT:+$OUT/gpu-check.log}; LOG=${LOG:-$W/gpu-check.log}
JSONL=${OUT:+$OUT/gpu-check.jsonl}; JSONL=${JSONL:-$W/gpu-check.jsonl}
: > "$JSONL"

check() {
say() { echo; echo "=== $*"; }
say "machine"
uname -srm; grep -m1 'model name' /proc/cpuinfo; nproc
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

say "node and code"
NODE=$(command -v node || true)
if [ -z "$NODE" ] || ! "$NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
  [ -f "$G/node.xz" ] || { echo "FAIL: no node >= 20 here and no .gpucheck/node.xz (run 'bash bench/gpu-check.sh pack' on a machine with Node)"; return 2; }
  if command -v xz >/dev/null; then xz -dc "$G/node.xz" > "$W/node"
  else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$G/node.xz" "$W/node"; fi
  chmod +x "$W/node"; NODE=$W/node
fi
echo "node: $NODE $("$NODE" --version)"
APP=""; VKLIBS=""
if [ -f "$G/app.tar.xz" ]; then # unpacked either way: its vklibs may serve the project too
  if tar xJf "$G/app.tar.xz" -C "$W" 2>/dev/null; then :; else
    python3 -c 'import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$G/app.tar.xz" "$W"; fi
  VKLIBS=$W/app/vklibs
fi
if [ "${PACKED:-0}" != 1 ] && [ -f "$ROOT/node_modules/webgpu/dist/linux-x64/dawn.node" ] && [ -d "$ROOT/node_modules/tsx" ]; then
  NM=$ROOT/node_modules; echo "code: the project, through tsx"
elif [ -n "$VKLIBS" ]; then
  APP=$W/app; NM=$APP/node_modules; echo "code: .gpucheck/app.tar.xz, unpacked in $APP"
else echo "FAIL: neither a node_modules with webgpu and tsx nor .gpucheck/app.tar.xz"; return 2; fi
bench() { # timeout in seconds, bench name, its arguments
  local t=$1 b=$2; shift 2
  if [ -n "$APP" ]; then timeout "$t" "$NODE" "$APP/bench-$b.mjs" "$@"
  else (cd "$ROOT" && timeout "$t" "$NODE" --import tsx "bench/$b.ts" "$@"); fi
}
for p in webgpu @tensorflow/tfjs-core @tensorflow/tfjs-backend-webgpu; do
  printf '%s %s\n' "$p" "$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$NM/$p/package.json" | head -1)"; done

say "vulkan loader and driver"
DAWN_DIR=$NM/webgpu/dist/linux-x64
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$W/xdg}; mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
if [ "$LAVAPIPE" = 1 ]; then echo "lavapipe from $GLASSBOX_LAVAPIPE (src/backend/lavapipe.ts sets it up in-process)"
else
  if [ -e "$DAWN_DIR/libvulkan.so.1" ]; then echo "loader: beside dawn.node (Dawn tries it first)"
  elif ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then echo "loader: the system's"
  elif [ -n "$VKLIBS" ]; then # (the packed app has it beside dawn.node already; this is the project's)
    export LD_LIBRARY_PATH=$VKLIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; echo "loader: the packed one, through LD_LIBRARY_PATH"
  else echo "WARN: no libvulkan.so.1 anywhere: Dawn will find no GPU (install libvulkan1, or pack .gpucheck/)"; fi
  # The NVIDIA driver's manifest: the usual places, then anywhere; else write one for its library.
  if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    ICD=$(ls /etc/vulkan/icd.d/nvidia_icd*.json /usr/share/vulkan/icd.d/nvidia_icd*.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd*.json 2>/dev/null | head -1)
    [ -z "$ICD" ] && ICD=$(find /usr /etc /opt -maxdepth 7 -name 'nvidia_icd*.json' 2>/dev/null | head -1)
    if [ -z "$ICD" ]; then
      GLX=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0 / {print $NF; exit}')
      [ -z "$GLX" ] && GLX=$(find /usr /opt -maxdepth 6 -name 'libGLX_nvidia.so.0' 2>/dev/null | head -1)
      if [ -n "$GLX" ]; then ICD=$W/nvidia_icd.json
        echo "{\"file_format_version\":\"1.0.0\",\"ICD\":{\"library_path\":\"$GLX\",\"api_version\":\"1.3.0\"}}" > "$ICD"
        echo "no nvidia_icd.json installed: wrote $ICD for $GLX"; fi
    fi
    if [ -n "$ICD" ]; then export VK_DRIVER_FILES=$ICD VK_ICD_FILENAMES=$ICD; echo "driver manifest: $ICD"; cat "$ICD"; echo
    else echo "WARN: no NVIDIA Vulkan driver found (nvidia_icd.json or libGLX_nvidia.so.0)"; fi
  else echo "driver manifest preset: ${VK_DRIVER_FILES:-$VK_ICD_FILENAMES}"; fi
  if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1 ' && [ -n "$VKLIBS" ]; then
    export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$VKLIBS
    echo "no system libEGL.so.1 (NVIDIA's Vulkan driver needs GLVND's): the packed one, through LD_LIBRARY_PATH"
  fi
  LIB=$(sed -n 's/.*"library_path" *: *"\([^"]*\)".*/\1/p' "${VK_DRIVER_FILES:-/dev/null}" 2>/dev/null | head -1)
  case "$LIB" in /*) ;; ?*) LIB=$(ldconfig -p | awk -v l="$LIB" '$1==l {print $NF; exit}') ;; esac
  if [ -n "$LIB" ] && [ -e "$LIB" ] && ldd "$LIB" | grep -q 'not found' && [ -n "$VKLIBS" ]; then
    export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$VKLIBS
    echo "driver library lacked libraries; added the packed ones; still missing:"; ldd "$LIB" | grep 'not found' || echo "  (none)"
  fi
fi

STEPS=${STEPS:-5}; LENGTHS=${LENGTHS:-100,500}; MATMUL=1024,2048,4096; CONFIG=B
[ "$LAVAPIPE" = 1 ] && { STEPS=${STEPS_LAVAPIPE:-2}; LENGTHS=10; MATMUL=256,512; CONFIG=A; }
run() { # label, timeout in seconds, bench name, its arguments
  say "$1"; shift
  bench "$@" 2> "$W/stderr" | tee -a "$JSONL"
  local rc=${PIPESTATUS[0]}
  grep -v -E 'artificially|^ +at |^ *[{}]$' "$W/stderr" | tail -12
  [ "$rc" = 0 ] || echo "(exit status $rc)"
  return "$rc"
}
if ! run "webgpu: adapter, matmul, config $CONFIG training" 400 train --backend webgpu --only $CONFIG --steps "$STEPS" --matmul $MATMUL; then
  if ! grep -q '"backend":"webgpu' "$JSONL"; then
    say "STOP: the webgpu backend did not start; the Vulkan loader's account follows"
    VK_LOADER_DEBUG=error,warn,driver bench 60 train --backend webgpu --only none --matmul 64 2>&1 | grep -v -E 'artificially|^ +at ' | head -60
    return 3
  fi
fi
[ "$LAVAPIPE" = 1 ] || run "webgpu: config B generation" 400 generate --backend webgpu --lengths "$LENGTHS" --batches 1,8 --skip-uncached-above 100
if [ "${QUICK:-0}" != 1 ] && [ "$LAVAPIPE" != 1 ]; then
  run "wasm: matmul, config B training" 400 train --backend wasm --only B --steps 2 --matmul 1024
  run "wasm: config B generation" 400 generate --backend wasm --lengths "$LENGTHS" --batches 1,8 --skip-uncached-above 100
fi

say "summary (tokens/s; webgpu ÷ wasm)"
"$NODE" -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
const kind = (r) => (r.backend.startsWith("webgpu") ? "webgpu" : r.backend.split(" ")[0])
const adapter = rows.find((r) => r.backend.startsWith("webgpu")); if (adapter) console.log("adapter:", adapter.backend)
for (const r of rows.filter((r) => r.metric === "matmul")) console.log(`matmul ${r.shape} ${kind(r)}: ${r.gflops} GFLOP/s`)
const pick = (k, f) => rows.filter((r) => kind(r) === k && f(r))
const line = (label, w, g) => console.log(`${label}: webgpu ${g ?? "-"} | wasm ${w ?? "-"}${g && w ? ` | ×${(g / w).toFixed(1)}` : ""}`)
const train = (k) => pick(k, (r) => r.config !== undefined && r.tokens_per_s !== undefined)[0]?.tokens_per_s
line("training tokens/s", train("wasm"), train("webgpu"))
for (const r of pick("webgpu", (r) => r.bench === "generate")) {
  const w = pick("wasm", (x) => x.bench === "generate" && x.batch === r.batch && x.new_tokens === r.new_tokens)[0]
  line(`generation batch ${r.batch}, ${r.new_tokens} tokens (cached)`, w?.cached_tokens_per_s, r.cached_tokens_per_s)
}' "$JSONL"
say "done (log: $LOG, JSON lines: $JSONL)"
}
check 2>&1 | tee "$LOG"; exit "${PIPESTATUS[0]}"
