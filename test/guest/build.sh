#!/usr/bin/env bash
# Builds the lab's test guest from Debian packages: the Debian kernel of
# linux-image-amd64 (unpacked, never installed) and an initramfs of
# busybox-static with test/guest/init and the few modules it needs (virtio
# disk, i6300esb watchdog). It boots in seconds under TCG and needs no disk
# image of its own: Glance gets the kernel and the ramdisk as images of their
# own, and a small blank raw disk as the machine image that names them.
# Besides it, an idle guest: a disk whose boot sector halts the CPU for good,
# for tests that need many real guests at little cost (qemu runs, the guest
# does nothing and takes no CPU).
#
# Output in OUTDIR: vmlinuz, initrd.gz, disk.raw, idle.raw, and release (the kernel's
# version and a digest of what the guest is made of: a changed guest gets new
# Glance images; an unchanged one is not built again). The unpacked kernel
# package is kept in CACHE between runs.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../harness/lib.sh
. "$HERE/../harness/lib.sh"

CACHE=${GUEST_CACHE:-/var/cache/computeha-guest}
# Modules the guest loads, each after what it depends on.
MODULES=(virtio_pci virtio_blk i6300esb)
DISK_MIB=1

# idle_disk FILE: a 1 MiB disk whose boot sector is cli; hlt; jmp back to the
# hlt, and the boot signature.
idle_disk() {
	{
		printf '\xfa\xf4\xeb\xfd'
		head -c 506 /dev/zero
		printf '\x55\xaa'
	} >"$1"
	truncate -s 1M "$1"
}

usage() {
	echo "usage: build.sh OUTDIR   (root; env GUEST_CACHE, default $CACHE)" >&2
	exit 2
}

# fetch_kernel: unpack the package linux-image-amd64 depends on into CACHE;
# sets KVER and KROOT.
fetch_kernel() {
	local pkg dst
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}') || pkg=''
	[[ -n $pkg ]] || die "apt-cache knows no kernel package linux-image-amd64 depends on (apt-get update?)"
	KVER=${pkg#linux-image-}
	dst=$CACHE/$pkg
	KROOT=$dst
	[[ -r $dst/boot/vmlinuz-$KVER ]] && return 0
	note "fetching $pkg into $dst"
	rm -rf "$dst.tmp"
	mkdir -p "$dst.tmp/deb"
	# apt-get download writes into the current directory as _apt when it can.
	chmod 755 "$dst.tmp/deb"
	(cd "$dst.tmp/deb" && apt-get -q download "$pkg" >&2) || die "apt-get download $pkg failed"
	dpkg-deb -x "$dst.tmp/deb/${pkg}"_*.deb "$dst.tmp" || die "dpkg-deb -x failed"
	rm -rf "$dst.tmp/deb"
	[[ -r $dst.tmp/boot/vmlinuz-$KVER ]] || die "$pkg has no boot/vmlinuz-$KVER"
	# modules.dep, written by depmod when a kernel is installed, is not in
	# the package.
	busybox depmod -b "$dst.tmp" "$KVER" || die "depmod failed"
	rm -rf "$dst"
	mv "$dst.tmp" "$dst"
}

# module_order: the .ko files of MODULES, each after its dependencies, once.
module_order() {
	local dep=$KROOT/lib/modules/$KVER/modules.dep m line path d
	local -A seen=()
	local -a out=()
	for m in "${MODULES[@]}"; do
		line=$(grep -E "/$m\\.ko(\\.[a-z]+)?:" "$dep") || die "module $m is not in $KVER"
		path=${line%%:*}
		local -a deps
		read -r -a deps <<<"${line#*:}"
		# modules.dep lists a module's dependencies, the nearest first.
		for ((d = ${#deps[@]} - 1; d >= 0; d--)); do
			[[ -n ${seen[${deps[d]}]:-} ]] || { seen[${deps[d]}]=1; out+=("${deps[d]}"); }
		done
		[[ -n ${seen[$path]:-} ]] || { seen[$path]=1; out+=("$path"); }
	done
	printf '%s\n' "${out[@]}"
}

build() {
	local out=$1 tmp root m
	need_cmd apt-cache apt-get dpkg-deb busybox gzip sha256sum
	# The guest has no libc: its busybox must be the static one.
	[[ $(dpkg-query -W -f='${db:Status-Abbrev}' busybox-static 2>/dev/null) == ii* ]] ||
		die "busybox-static is not installed (make deps)"
	fetch_kernel
	mkdir -p "$out"
	tmp=$(mktemp -d "$out/.build.XXXXXX")
	root=$tmp/root
	mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/lib/modules"
	cp "$(readlink -f "$(command -v busybox)")" "$root/bin/busybox"
	install -m 755 "$HERE/init" "$root/init"
	: >"$root/lib/modules/order"
	while read -r m; do
		cp "$KROOT/lib/modules/$KVER/$m" "$root/lib/modules/"
		echo "${m##*/}" >>"$root/lib/modules/order"
	done < <(module_order)
	cp "$KROOT/boot/vmlinuz-$KVER" "$tmp/vmlinuz"
	# The release names what the guest is made of (cpio archives are not
	# reproducible byte for byte): an unchanged guest keeps its Glance images.
	release="kernel=$KVER id=$( (cd "$root" && find . -type f | LC_ALL=C sort | xargs sha256sum) | cat - <(sha256sum <"$tmp/vmlinuz") <(echo "disk=$DISK_MIB idle=1") | sha256sum | cut -c1-16)"
	if [[ -r $out/release && $(<"$out/release") == "$release" && -r $out/vmlinuz && -r $out/initrd.gz && -r $out/disk.raw && -r $out/idle.raw ]]; then
		rm -rf "$tmp"
		note "guest up to date in $out ($release)"
		return 0
	fi
	(cd "$root" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) | gzip -9 -n >"$tmp/initrd.gz"
	truncate -s "${DISK_MIB}M" "$tmp/disk.raw"
	idle_disk "$tmp/idle.raw"
	mv -f "$tmp/vmlinuz" "$tmp/initrd.gz" "$tmp/disk.raw" "$tmp/idle.raw" "$out/"
	echo "$release" >"$out/release"
	rm -rf "$tmp"
	note "guest built in $out (kernel $KVER, initramfs $(($(stat -c %s "$out/initrd.gz") / 1024)) KiB)"
}

[[ $# -eq 1 ]] || usage
need_root
out=$(abspath "$1")
check_safe_path "$out"
build "$out"
