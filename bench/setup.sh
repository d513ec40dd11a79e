#!/usr/bin/env bash
# Installs what `npm run bench` needs beyond ./scripts/setup (which installs fuse, libfuse2, Node packages
# and builds): MooseFS 3 from Debian's own packages for the MooseFS target (master, chunkserver, mfsmount,
# mfssetgoal), iproute2 for the network namespace it runs in, and the shell tools the workloads use.
# Debian enables none of the MooseFS services on install; the harness starts its own daemons.
set -euo pipefail

packages=(moosefs-master moosefs-chunkserver moosefs-client iproute2 util-linux coreutils findutils tar)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

test -f /var/lib/mfs/metadata.mfs.empty || { echo "bench/setup.sh: moosefs-master installed no /var/lib/mfs/metadata.mfs.empty" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || echo "bench/setup.sh: note: npm run bench must run as root (drop_caches, network namespace, mounts)" >&2
echo "bench/setup.sh: ready ($(mfsmaster -v 2>&1 | head -n 1))"
