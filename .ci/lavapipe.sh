#!/usr/bin/env bash
# Provides Mesa's lavapipe (a Vulkan driver that runs on the CPU) in .lavapipe/, so the WebGPU
# backend's tests run on machines without a GPU. Nothing is installed system-wide: the Debian
# packages are downloaded with a private apt configuration and unpacked with `dpkg -x`.
#
# Why backports: Dawn (the WebGPU implementation inside the `webgpu` npm package) refuses
# bookworm's own lavapipe (Mesa 22.3 lacks shaderUniform*ArrayDynamicIndexing); Mesa 25 from
# bookworm-backports is accepted. That Mesa needs libdrm ≥ 2.4.121, also from backports, and any
# of its other dependencies this machine lacks (here: the Vulkan loader, libvulkan1) come along.
#
# Result: .lavapipe/lvp_icd.json, a Vulkan driver manifest whose library path is relative to it,
# and .lavapipe/lib, the libraries to load first. src/backend/lavapipe.ts reads both (point
# GLASSBOX_LAVAPIPE at the folder). Idempotent: does nothing when .lavapipe/ready exists.
#   bash .ci/lavapipe.sh            # from the project root; needs apt's Debian archive reachable
set -euo pipefail
cd "$(dirname "$0")/.."
L=$PWD/.lavapipe
[ -f "$L/ready" ] && { cat "$L/ready"; exit 0; }

. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || { echo "lavapipe.sh: written for Debian bookworm, found ${PRETTY_NAME:-unknown}" >&2; exit 1; }
rm -rf "$L"
mkdir -p "$L/apt/lists/partial" "$L/apt/cache/archives/partial" "$L/debs" "$L/root" "$L/lib"

# A private apt: the archive this machine already uses, with bookworm-backports added. It reads
# and writes only under .lavapipe/apt, so the system's package lists stay as they were.
U=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | awk '$2=="bookworm" {print $1; exit}')
U=${U:-http://deb.debian.org/debian/}
KEY=/usr/share/keyrings/debian-archive-keyring.gpg
printf 'deb [signed-by=%s] %s bookworm main\ndeb [signed-by=%s] %s bookworm-backports main\n' "$KEY" "$U" "$KEY" "$U" > "$L/apt/sources.list"
APT=(-o "Dir::Etc::SourceList=$L/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent -o "Dir::State::Lists=$L/apt/lists"
     -o "Dir::Cache=$L/apt/cache" -o APT::Sandbox::User=root -o Debug::NoLocking=1)
apt-get "${APT[@]}" -qq update

# The driver and the libdrm it was built against, then whatever else it depends on that is not
# installed here (checked by dpkg, so a machine with the system loader keeps using it).
WANT=(mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports)
DEPENDS=$(apt-cache "${APT[@]}" show mesa-vulkan-drivers/bookworm-backports | sed -n 's/^Depends: //p' | head -1)
for dep in $(echo "$DEPENDS" | tr ',' '\n' | sed 's/[(|].*//; s/ //g'); do
  case "$dep" in libdrm2|libdrm-amdgpu1) continue ;; esac
  dpkg -s "$dep" >/dev/null 2>&1 || WANT+=("$dep")
done
(cd "$L/debs" && apt-get "${APT[@]}" -qq download "${WANT[@]}")
for f in "$L"/debs/*.deb; do dpkg -x "$f" "$L/root"; done

LVP=$(find "$L/root" -name libvulkan_lvp.so | head -1)
[ -n "$LVP" ] || { echo "lavapipe.sh: libvulkan_lvp.so not found in the downloaded packages" >&2; exit 1; }
LIBDIR=$(dirname "$LVP")
# The libraries the driver must find before the system's older ones (libdrm) or instead of
# missing ones (libvulkan). Symlinked into one folder so a loader needs a single path.
for so in "$LIBDIR"/libdrm*.so.* "$LIBDIR"/libvulkan.so.1*; do [ -e "$so" ] && ln -sfr "$so" "$L/lib/"; done
# Relative library_path: resolved against this manifest's folder, so .lavapipe/ can move.
API=$(sed -n 's/.*"api_version": *"\([^"]*\)".*/\1/p' "$L"/root/usr/share/vulkan/icd.d/lvp_icd*.json | head -1)
printf '{"file_format_version":"1.0.0","ICD":{"library_path":"./%s","api_version":"%s"}}\n' "${LVP#"$L"/}" "${API:-1.3.0}" > "$L/lvp_icd.json"

# Every library the driver needs must resolve, or Dawn would report "no adapter" much later.
MISSING=$(LD_LIBRARY_PATH=$L/lib ldd "$LVP" | grep 'not found' || true)
[ -z "$MISSING" ] || { echo "lavapipe.sh: libvulkan_lvp.so has unresolved libraries:" >&2; echo "$MISSING" >&2; exit 1; }

VERSIONS=$(for f in "$L"/debs/*.deb; do dpkg-deb --showformat='${Package}=${Version}' -W "$f"; done | paste -sd' ' -)
rm -rf "$L/apt" "$L/debs"
echo "lavapipe ready in .lavapipe: $VERSIONS" > "$L/ready"
cat "$L/ready"
