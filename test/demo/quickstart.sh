#!/usr/bin/env bash
# Quick start: a simulated BMC (OpenIPMI's ipmi_sim) stands in for a compute
# host's IPMI controller, and fence_ipmi powers the "host" off and on through
# it, first as an operator types it, then as Pacemaker's fencer calls it.
# Run as root from the repository (make demo). Leaves nothing running.
set -euo pipefail

cd "$(dirname "$0")/../.."
[[ $(id -u) -eq 0 ]] || { echo "quickstart: run as root (it starts a BMC simulator)" >&2; exit 1; }

test/harness/deps.sh
make --no-print-directory build >/dev/null

dir=$(mktemp -d /tmp/computeha-demo.XXXXXX)
port=$((20000 + RANDOM % 20000))
cleanup() {
	test/harness/bmc.sh stop "$dir" compute1 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

# The BMC password lives in a root-only file; fence_ipmi reads it through
# password_script, so it never appears on a command line.
pw=demo-$RANDOM$RANDOM
install -m 600 /dev/null "$dir/bmc-password"
printf '%s\n' "$pw" >"$dir/bmc-password"
BMC_PASSWORD=$pw test/harness/bmc.sh start "$dir" compute1 "$port" 2>/dev/null

opts=(--ip=127.0.0.1 --ipport="$port" --username=admin --password-script="cat $dir/bmc-password" --lanplus --cipher=3)
show() {
	local start rc
	printf '\n$ %s\n' "$*"
	start=$(date +%s%N)
	set +e
	"$@"
	rc=$?
	set -e
	printf '  (exit %d, %d ms; BMC reports power %s)\n' "$rc" $((($(date +%s%N) - start) / 1000000)) \
		"$(test/harness/bmc.sh power "$dir" compute1)"
}

echo "A simulated BMC for host compute1 listens on 127.0.0.1:$port (IPMI 2.0, cipher suite 3)."
show bin/fence_ipmi --action=status "${opts[@]}"
show bin/fence_ipmi --action=off "${opts[@]}"
show bin/fence_ipmi --action=status "${opts[@]}"
show bin/fence_ipmi --action=on "${opts[@]}"

printf '\nNow as Pacemaker calls it: options on standard input, action reboot.\n'
stdin="action=reboot
ip=127.0.0.1
ipport=$port
username=admin
password_script=cat $dir/bmc-password
lanplus=1
cipher=3
nodename=compute1"
show bin/fence_ipmi <<<"$stdin"

printf '\nWhat the BMC carried out (time, power change):\n'
sed 's/^/  /' "$dir/compute1/events"
printf '\nTo use it in a cluster:\n  pcs stonith create ipmi-compute1 fence_ipmi ip=BMC-ADDRESS username=admin \\\n    password_script="cat /etc/computeha/bmc-compute1" lanplus=1 cipher=3 pcmk_host_list=compute1\n'
