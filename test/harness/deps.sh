#!/usr/bin/env bash
# Installs the Debian 12 packages the tests need (run as root). Idempotent:
# returns at once when everything is already installed.
set -euo pipefail

usage() {
	echo "usage: deps.sh   (no arguments; run as root on Debian 12)" >&2
	exit 2
}
[[ $# -eq 0 ]] || usage

PACKAGES=(
	# IPMI BMC simulator (ipmi_sim) and client
	openipmi ipmitool
	# Cluster stack; fence_ipmilan runs ipmitool
	fence-agents pacemaker pacemaker-cli-utils corosync pcs resource-agents
	# Private libvirtd with the test driver; the lab's computes run real qemu
	# guests under Nova's libvirt driver (python3-libvirt), made of a Debian
	# kernel and a static busybox (test/guest)
	libvirt-daemon libvirt-clients libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils
	python3-libvirt busybox-static
	# xmllint (parsing --output-as=xml, validating agent metadata)
	libxml2-utils
	# ip netns, unshare/nsenter/setpriv/flock/setsid, mount, ps
	iproute2 util-linux mount procps
	# The lab's shared storage: an sshd serving SFTP, mounted with sshfs (FUSE;
	# the kernel may have no NFS)
	openssh-server openssh-client sshfs
	# Package proof: a clean Debian root, lintian, rpm inspection, man
	debootstrap lintian rpm man-db
	# systemd-tmpfiles, which applies the package's tmpfiles.d snippet
	systemd
	# The race detector of the unit tests links with cgo
	gcc libc6-dev
	# promtool checks and unit-tests the shipped alert rules; the end-to-end suite runs a
	# Prometheus and an Alertmanager of its own (the packages' services are not started)
	prometheus prometheus-alertmanager
)
# Tools the harness calls, checked after installation.
COMMANDS=(gcc ipmi_sim ipmitool fence_ipmilan corosync corosync-cfgtool pacemakerd crm_mon
	stonith_admin cibadmin crm_attribute pcs libvirtd virsh qemu-system-x86_64 qemu-img busybox xmllint ip unshare nsenter
	setpriv setsid flock mount sshd ssh ssh-keygen sshfs fusermount3 debootstrap lintian rpm dpkg-deb systemd-tmpfiles promtool prometheus-alertmanager)
ATTEMPTS=4 # one try plus three retries

log() { printf 'deps.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ -r /etc/debian_version ]] || die "not a Debian system"

missing() {
	local p
	for p in "${PACKAGES[@]}"; do
		[[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || echo "$p"
	done
}

check_commands() {
	local c bad=()
	for c in "${COMMANDS[@]}"; do
		command -v "$c" >/dev/null 2>&1 || [[ -x /usr/sbin/$c ]] || bad+=("$c")
	done
	[[ ${#bad[@]} -eq 0 ]] || die "installed, but commands are missing: ${bad[*]}"
}

# retry DESCRIPTION CMD...: run CMD up to ATTEMPTS times (mirrors and locks
# fail transiently), repairing an interrupted dpkg run in between.
retry() {
	local what=$1 i
	shift
	for ((i = 1; i <= ATTEMPTS; i++)); do
		if "$@"; then
			return 0
		fi
		((i < ATTEMPTS)) || break
		log "$what failed (attempt $i of $ATTEMPTS), retrying in $((i * 5))s"
		sleep $((i * 5))
		dpkg --configure -a || true
	done
	die "$what failed after $ATTEMPTS attempts"
}

mapfile -t todo < <(missing)
if [[ ${#todo[@]} -eq 0 ]]; then
	check_commands
	log "all packages already installed"
	exit 0
fi
log "installing: ${todo[*]}"

export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start corosync, pacemaker or libvirtd on the host:
# a policy-rc.d that denies every action, in place only while installing (a
# policy-rc.d that is already there is left alone).
POLICY=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $POLICY ]]; then
	printf '#!/bin/sh\n# temporary, from deps.sh\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"
	own_policy=1
fi
cleanup() {
	if [[ $own_policy == 1 ]] && grep -q 'from deps.sh' "$POLICY" 2>/dev/null; then
		rm -f "$POLICY"
	fi
}
trap cleanup EXIT

# Lock timeout: another apt/dpkg (e.g. unattended-upgrades on a fresh VM) may
# hold the lock for a while.
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 -q)
retry "apt-get update" "${APT[@]}" update
# Only what is missing: installed packages are not upgraded behind our back.
retry "apt-get install" "${APT[@]}" install -y --no-install-recommends "${todo[@]}"

mapfile -t todo < <(missing)
[[ ${#todo[@]} -eq 0 ]] || die "still not installed: ${todo[*]}"
check_commands
log "done"
