#!/usr/bin/env bash
# Prepares, once per machine, a clean Debian 12 root with what an operator
# installs before computeha (Pacemaker, pcs, resource-agents, man-db), and
# prints its path. Later runs find it in the cache and return at once.
#
#   rootfs.sh CACHE_DIR
#
# The root is built with debootstrap from this machine's Debian mirror, in
# CACHE_DIR/root.tmp, and renamed to CACHE_DIR/debian12-<recipe hash> only
# once complete, so an interrupted build is never used. Tests never write
# into it: they stack an overlay on it (sandbox.sh).
set -euo pipefail
# shellcheck source=../harness/lib.sh
source "$(dirname "$0")/../harness/lib.sh"

[[ $# -eq 1 ]] || {
	echo "usage: rootfs.sh CACHE_DIR" >&2
	exit 2
}
need_root
need_cmd debootstrap unshare flock sha256sum
cache=$(abspath "$1")
check_safe_path "$cache"

SUITE=bookworm
# What the root holds. fence-agents is deliberately absent: the package must
# work without it. Its RELAX NG schema for agent metadata is extracted from
# the .deb (not installed) to validate our metadata with.
PACKAGES=(pacemaker pacemaker-cli-utils pcs resource-agents man-db libxml2-utils)
SCHEMA_PKG=fence-agents
SCHEMA_FILE=usr/share/cluster/relaxng/metadata.rng
SCHEMA_DEST=/usr/local/share/computeha-test/metadata.rng

# mirror: the first Debian mirror of this machine's apt sources (deb822 or
# one-line format) that serves the suite.
mirror() {
	local f uri=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		uri=$(awk -v suite="$SUITE" '
			BEGIN { RS = ""; FS = "\n" }
			{
				u = ""; s = ""; ok = 1
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); split(u, a, /[ \t]+/); u = a[1] }
					if ($i ~ /^Suites:/) s = " " $i " "
					if ($i ~ /^Enabled:[ \t]*no/) ok = 0
				}
				if (ok && u != "" && s ~ (" " suite " ")) { print u; exit }
			}' "$f")
		[[ -z $uri ]] || break
	done
	if [[ -z $uri ]]; then
		uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++; if ($2 ~ /^\[/) i++; if ($(i+1) == suite) { print $i; exit } }')
	fi
	[[ -n $uri ]] || die "no $SUITE mirror in /etc/apt/sources.list*"
	printf '%s\n' "$uri"
}

# The cache key covers the recipe, so changing this script builds a new root.
key=$(sha256sum "$0" | cut -c1-12)
root=$cache/debian12-$key
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if [[ -f $root/.complete ]]; then
	printf '%s\n' "$root"
	exit 0
fi

MIRROR=$(mirror)
# Security updates come from the same host layout as the mirror when it is
# deb.debian.org (the usual case); other mirrors get the main suite only.
security=""
if [[ $MIRROR == */debian || $MIRROR == */debian/ ]]; then
	security="deb ${MIRROR%/}-security $SUITE-security main"
fi
tmp=$cache/root.tmp
rm -rf --one-file-system "$tmp"
# Older roots of this cache are replaced by the new recipe's.
for old in "$cache"/debian12-*; do
	[[ -d $old ]] && rm -rf --one-file-system "$old"
done
start=$(now_ms)
note "debootstrap $SUITE from $MIRROR into $tmp (a few minutes, once per machine)"
debootstrap --variant=minbase "$SUITE" "$tmp" "$MIRROR" >"$cache/debootstrap.log" 2>&1 ||
	die "debootstrap failed, see $cache/debootstrap.log"
{
	echo "deb $MIRROR $SUITE main"
	echo "deb $MIRROR $SUITE-updates main"
	[[ -z $security ]] || echo "$security"
} >"$tmp/etc/apt/sources.list"
# Nothing in this root may start a daemon while packages are installed.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod 755 "$tmp/usr/sbin/policy-rc.d"

note "installing ${PACKAGES[*]}"
# proc, sys and dev only in a private mount namespace: they disappear with
# it, whatever happens to this script. The inner script is expanded by the
# inner shell, from its arguments.
# shellcheck disable=SC2016
unshare --mount --propagation private -- /bin/bash -euo pipefail -c '
	r=$1; shift
	mount -t proc proc "$r/proc"
	mount -t sysfs sysfs "$r/sys"
	mount --rbind /dev "$r/dev"
	chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		/bin/sh -ec "
		apt-get -q update
		apt-get -q install -y --no-install-recommends $*
		cd /tmp && apt-get -q download '"$SCHEMA_PKG"'
		mkdir -p '"$(dirname "$SCHEMA_DEST")"'
		dpkg-deb --fsys-tarfile '"$SCHEMA_PKG"'_*.deb | tar -xO ./'"$SCHEMA_FILE"' >'"$SCHEMA_DEST"'
		rm -f '"$SCHEMA_PKG"'_*.deb
		apt-get clean
	"' rootfs "$tmp" "${PACKAGES[@]}" >>"$cache/debootstrap.log" 2>&1 ||
	die "installing packages into the root failed, see $cache/debootstrap.log"
[[ -s $tmp$SCHEMA_DEST ]] || die "the fence metadata schema was not extracted"
touch "$tmp/.complete"
mv "$tmp" "$root"
note "root ready in $((($(now_ms) - start) / 1000)) s"
printf '%s\n' "$root"
