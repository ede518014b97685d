#!/usr/bin/env bash
# Holds a throw-away Debian root for the packaging test: an overlay whose
# lower layer is the cached root of rootfs.sh (never written to) with proc,
# sys and dev mounted in it, then sleeps until killed.
#
#   unshare --mount --propagation private -- sandbox.sh LOWER DIR
#
# It must run in a private mount namespace, as above: every mount then
# exists only there and disappears with the last process of the namespace,
# even when the test is killed, and nothing is ever mounted on the machine
# itself. Prints "ready" once the root is usable; commands enter it with
# nsenter --mount=/proc/PID/ns/mnt chroot DIR/merged.
set -euo pipefail
# shellcheck source=../harness/lib.sh
source "$(dirname "$0")/../harness/lib.sh"

[[ $# -eq 2 ]] || {
	echo "usage: unshare --mount --propagation private -- sandbox.sh LOWER DIR" >&2
	exit 2
}
need_root
lower=$(abspath "$1")
dir=$(abspath "$2")
check_safe_path "$lower"
check_safe_path "$dir"
[[ -f $lower/.complete ]] || die "$lower is not a complete root (run rootfs.sh)"
# Refuse to run in the machine's own mount namespace.
[[ $(ns_id $$ mnt) != "$(ns_id 1 mnt)" ]] || die "run me under unshare --mount --propagation private"

mkdir -p "$dir/upper" "$dir/work" "$dir/merged"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"
mount -t proc proc "$dir/merged/proc"
mount -t sysfs sysfs "$dir/merged/sys"
mount --rbind /dev "$dir/merged/dev"
mount -t tmpfs -o mode=755 tmpfs "$dir/merged/run"
echo ready
exec sleep infinity
