#!/usr/bin/env bash
# Provisions a fresh Debian 12 host for dfs: Node 20, the OS packages, the project in /opt/dfs, the
# settings in /etc/dfs, and the systemd units of the roles asked for, enabled and started.
#
#   provision.sh --roles name-server,storage,mount --address 10.0.0.5 \
#                --name-server http://10.0.0.1:7700 --secret-file /path/to/secret [--source DIR]
#
# Roles: name-server, storage, mount (any mix). --source is the checkout to install (default: this one).
set -euo pipefail

roles="" address="127.0.0.1" name_server="" secret_file="" source_dir="$(cd "$(dirname "$0")/.." && pwd)"
while [ $# -gt 0 ]; do
  case "$1" in
    --roles) roles="$2"; shift 2 ;;
    --address) address="$2"; shift 2 ;;
    --name-server) name_server="$2"; shift 2 ;;
    --secret-file) secret_file="$2"; shift 2 ;;
    --source) source_dir="$2"; shift 2 ;;
    *) echo "provision.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$roles" ] || { echo "provision.sh: --roles is required" >&2; exit 2; }
[ -n "$secret_file" ] && [ -s "$secret_file" ] || { echo "provision.sh: --secret-file must name the cluster secret" >&2; exit 2; }
name_server="${name_server:-http://${address}:7700}"
[ "$(id -u)" -eq 0 ] || { echo "provision.sh: run as root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ca-certificates curl gnupg fuse libfuse2 python3 make g++ rsync git

# Node 20: Debian 12 ships 18, so take NodeSource's Node 20 packages.
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg
  echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_20.x nodistro main" > /etc/apt/sources.list.d/nodesource.list
  apt-get update -qq
  apt-get install -y -qq nodejs
fi

# The project, built in place.
install -d /opt/dfs
rsync -a --delete --exclude node_modules --exclude dist --exclude .vagrant --exclude .git "$source_dir/" /opt/dfs/
(cd /opt/dfs && ./scripts/setup --no-vagrant)

# Settings: the shared environment file, and the secret readable by root only.
install -d -m 0755 /etc/dfs /var/lib/dfs
install -m 0600 "$secret_file" /etc/dfs/secret
sed -e "s|^DFS_NAME_SERVER=.*|DFS_NAME_SERVER=${name_server}|" \
    -e "s|^DFS_LISTEN=.*|DFS_LISTEN=0.0.0.0|" \
    -e "s|^DFS_ADVERTISE=.*|DFS_ADVERTISE=http://${address}:7701|" \
    /opt/dfs/deploy/dfs.env > /etc/dfs/dfs.env

# `dfs` on the PATH, pointed at this cluster (run it with sudo: the secret is root's).
cat > /usr/local/bin/dfs <<'WRAPPER'
#!/bin/sh
set -a
. /etc/dfs/dfs.env
set +a
export DFS_SECRET_FILE="${DFS_SECRET_FILE:-/etc/dfs/secret}"
exec /usr/bin/node /opt/dfs/bin/dfs.js "$@"
WRAPPER
chmod 0755 /usr/local/bin/dfs

units=()
IFS=',' read -ra wanted <<< "$roles"
for role in "${wanted[@]}"; do
  case "$role" in
    name-server) units+=(dfs-name-server.service) ;;
    storage) units+=(dfs-storage-server.service) ;;
    mount) units+=(dfs-mount.service) ;;
    *) echo "provision.sh: unknown role $role" >&2; exit 2 ;;
  esac
done
for unit in "${units[@]}"; do install -m 0644 "/opt/dfs/deploy/systemd/$unit" /etc/systemd/system/; done
systemctl daemon-reload
systemctl enable --now "${units[@]}"
echo "provisioned: ${units[*]} (name server ${name_server})"
