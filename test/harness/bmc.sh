#!/usr/bin/env bash
# IPMI-over-LAN BMC simulators for tests, one OpenIPMI ipmi_sim per BMC.
#
# Layout of DIR/NAME:
#   lan.conf       ipmi_sim config (mode 600: it holds the password)
#   sim.emu        emulation commands (one BMC at IPMB 0x20)
#   chassis        chassis control program called by ipmi_sim
#   state/         ipmi_sim persistent state (users, SEL, SDR, LAN parameters),
#                  reset at every start
#   power          "1" or "0": the simulated host's power
#   events         one line per power change: "<epoch seconds>.<ms> on|off"
#   hook           optional executable, run as "hook on|off" after each change
#   hook.log       output of the hook
#   ipmi_sim.log   ipmi_sim's output
#   pid            "PID STARTTIME" of ipmi_sim
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

usage() {
	cat >&2 <<'EOF'
usage: bmc.sh start DIR NAME PORT   start a BMC listening on BMC_ADDR:PORT
       bmc.sh stop DIR NAME         stop one BMC
       bmc.sh stopall DIR           stop every BMC under DIR
       bmc.sh power DIR NAME        print "on" or "off"

environment:
  BMC_PASSWORD  password of user "admin" (default "password"); it is only
                written to DIR/NAME/lan.conf (mode 600), never to argv
  BMC_ADDR      listen address (default 127.0.0.1)
  BMC_NETNS     run ipmi_sim (and the readiness check) in this network namespace
EOF
	exit 2
}

START_TIMEOUT=10

check_name() {
	[[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$ ]] || die "bad BMC name '$1' (use [A-Za-z0-9_.-], max 32)"
}

# in_netns CMD...: run CMD in BMC_NETNS when set.
in_netns() {
	if [[ -n ${BMC_NETNS:-} ]]; then
		ip netns exec "$BMC_NETNS" "$@"
	else
		"$@"
	fi
}

write_chassis_script() {
	# ipmi_sim runs this through popen(): "<path> get power" must print
	# "power:0|1"; "<path> set power "0|1"" changes the power. Power cycle is
	# "set power 0", then "set power 1" one second later from ipmi_sim itself;
	# hard reset is "set reset 1"; soft shutdown is "set shutdown 1".
	# ipmi_sim waits for this program while it handles the request, so the
	# hook must be quick (start slow work in the background, with its output
	# redirected; the hook's own output goes to hook.log).
	cat >"$1" <<'EOF'
#!/bin/sh
set -u
# Every chassis status request runs this script: shell builtins only on the
# "get" path (no dirname, no cat), so the simulated BMC answers in about a
# millisecond as a real one does, and agent timings are not the script's.
d=${0%/*}

# readval FILE DEFAULT: set v to the file's first line, or DEFAULT.
readval() {
	v=
	{ read -r v <"$1"; } 2>/dev/null || true
	[ -n "$v" ] || v=$2
}

# event on|off: record the change, then run the hook.
event() {
	printf '%s %s\n' "$(date +%s.%3N)" "$1" >>"$d/events"
	if [ -x "$d/hook" ]; then
		"$d/hook" "$1" </dev/null >>"$d/hook.log" 2>&1 ||
			echo "$(date +%s.%3N) hook $1 failed with status $?" >>"$d/hook.log"
	fi
}

# setpower 0|1: a change of power is recorded and hooked; setting the power a host has
# already (a client that repeats a request it got no answer to) changes nothing, as on a
# real BMC.
setpower() {
	readval "$d/power" 1
	[ "$v" != "$1" ] || return 0
	printf '%s\n' "$1" >"$d/power.tmp" && mv -f "$d/power.tmp" "$d/power"
	if [ "$1" = 1 ]; then event on; else event off; fi
}

op=${1:-}
[ $# -gt 0 ] && shift
case $op in
get)
	for what in "$@"; do
		case $what in
		power) readval "$d/power" 1 && echo "power:$v" ;;
		boot) readval "$d/boot" default && echo "boot:$v" ;;
		esac
	done
	;;
set)
	while [ $# -ge 2 ]; do
		case $1 in
		power) if [ "$2" = 0 ]; then setpower 0; else setpower 1; fi ;;
		reset) setpower 0 && setpower 1 ;;
		shutdown) setpower 0 ;;
		boot) printf '%s\n' "$2" >"$d/boot" ;;
		esac
		shift 2
	done
	;;
esac
exit 0
EOF
	chmod 755 "$1"
}

# owns_udp_port PID PORT: true if PID holds a UDP socket bound to PORT (looked
# up in PID's own network namespace, matched by socket inode). Guards against
# a readiness answer from another BMC already listening on the same port.
owns_udp_port() {
	local pid=$1 hex inodes fd link i
	hex=$(printf ':%04X' "$2")
	inodes=$(awk -v p="$hex" 'NR > 1 && substr($2, length($2) - 4) == p { print $10 }' \
		"/proc/$pid/net/udp" 2>/dev/null) || return 1
	[[ -n $inodes ]] || return 1
	for fd in "/proc/$pid/fd/"*; do
		link=$(readlink "$fd" 2>/dev/null) || continue
		for i in $inodes; do
			[[ $link == "socket:[$i]" ]] && return 0
		done
	done
	return 1
}

# udp_port_busy PORT: true if any UDP socket in the BMC's network namespace is
# bound to PORT. ipmi_sim sets SO_REUSEADDR, so a second simulator on a busy
# port starts fine and the two then share (steal) each other's requests.
udp_port_busy() {
	local hex
	hex=$(printf ':%04X' "$1")
	in_netns cat /proc/self/net/udp |
		awk -v p="$hex" 'NR > 1 && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }'
}

cmd_start() {
	[[ $# -eq 3 ]] || usage
	local dir name=$2 port=$3 addr=${BMC_ADDR:-127.0.0.1} pw=${BMC_PASSWORD:-password}
	dir=$(abspath "$1")
	check_safe_path "$dir"
	check_name "$name"
	if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
		die "bad port '$port'"
	fi
	[[ $addr =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "BMC_ADDR '$addr' is not an IPv4 address"
	# IPMI passwords are at most 20 bytes; quotes and blanks would break lan.conf.
	[[ $pw =~ ^[!#-~]{1,20}$ && $pw != *\\* ]] ||
		die "BMC_PASSWORD must be 1-20 printable characters without blanks, '\"' or '\\'"
	need_root
	need_cmd ipmi_sim ipmitool setsid
	if [[ -n ${BMC_NETNS:-} ]]; then
		need_cmd ip
		ip netns list | awk '{print $1}' | grep -qxF -- "$BMC_NETNS" || die "network namespace '$BMC_NETNS' does not exist"
	fi

	local b="$dir/$name"
	mkdir -p "$b"
	chmod 700 "$b"
	exec 9>"$b/lock"
	flock -n 9 || die "another bmc.sh is working on $b"
	if pidfile_alive "$b/pid"; then
		die "BMC $name is already running (pid $(cut -d' ' -f1 "$b/pid"))"
	fi
	# Users changed over IPMI are persisted in state/ and would override
	# lan.conf on the next start; every start begins from lan.conf.
	rm -rf "${b:?}/state"
	mkdir -m 700 "$b/state"

	if udp_port_busy "$port"; then
		die "UDP port $port is already in use${BMC_NETNS:+ in netns $BMC_NETNS}"
	fi

	write_chassis_script "$b/chassis"
	# The power state survives a BMC restart like a real host's would.
	[[ -f $b/power ]] || echo 1 >"$b/power"
	touch "$b/events"

	local guid
	guid=$(printf '%s' "$name" | md5sum | cut -c1-32)
	(
		umask 077
		cat >"$b/lan.conf.tmp" <<EOF
name "$name"
set_working_mc 0x20
  startlan 1
    addr $addr $port
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid $guid
  endlan
  chassis_control "$b/chassis"
  user 2 true "admin" "$pw" admin 10 none md2 md5 straight
EOF
	)
	mv -f "$b/lan.conf.tmp" "$b/lan.conf"
	cat >"$b/sim.emu" <<'EOF'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
EOF

	# -s keeps ipmi_sim's persistent state under DIR (its default is
	# /usr/var/ipmi_sim/NAME, created on first start). setsid gives it its own
	# session and process group; it does not fork here (the background child
	# is not a group leader), and "ip netns exec" execs too, so $! is ipmi_sim.
	local pid
	(
		cd "$b"
		exec 9>&-
		if [[ -n ${BMC_NETNS:-} ]]; then
			exec setsid ip netns exec "$BMC_NETNS" ipmi_sim -c lan.conf -f sim.emu -s state -n
		else
			exec setsid ipmi_sim -c lan.conf -f sim.emu -s state -n
		fi
	) </dev/null >>"$b/ipmi_sim.log" 2>&1 &
	pid=$!
	pidfile_write "$b/pid" "$pid"

	# Ready when a real client gets an answer. -E reads IPMI_PASSWORD from the
	# environment; cipher suite 3 avoids the slow cipher auto-detection that
	# ipmi_sim does not support.
	local deadline=$(($(now_ms) + START_TIMEOUT * 1000)) out=''
	while :; do
		if ! pidfile_alive "$b/pid"; then
			tail -n 20 "$b/ipmi_sim.log" >&2 || true
			rm -f "$b/pid"
			die "ipmi_sim for $name exited during start-up (log: $b/ipmi_sim.log)"
		fi
		if out=$(IPMI_PASSWORD=$pw in_netns ipmitool -I lanplus -C 3 -H "$addr" -p "$port" \
			-U admin -E -N 1 -R 1 chassis power status 2>&1); then
			break
		fi
		if (($(now_ms) >= deadline)); then
			note "last ipmitool output: $out"
			tail -n 20 "$b/ipmi_sim.log" >&2 || true
			pidfile_kill "$b/pid" 5
			die "BMC $name did not answer on $addr:$port within ${START_TIMEOUT}s (is that address up${BMC_NETNS:+ in netns $BMC_NETNS}?)"
		fi
		sleep 0.1
	done
	if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) != */ipmi_sim ]]; then
		pidfile_kill "$b/pid" 5
		die "pid $pid is not ipmi_sim (unexpected fork during start-up)"
	fi
	if ! owns_udp_port "$pid" "$port"; then
		tail -n 20 "$b/ipmi_sim.log" >&2 || true
		pidfile_kill "$b/pid" 5
		die "ipmi_sim for $name did not bind $addr:$port (port already in use?)"
	fi
	note "BMC $name up on $addr:$port${BMC_NETNS:+ (netns $BMC_NETNS)}, pid $pid"
}

cmd_stop() {
	[[ $# -eq 2 ]] || usage
	local dir
	dir=$(abspath "$1")
	check_name "$2"
	# Nothing started, nothing to stop: stop is safe to repeat.
	pidfile_kill "$dir/$2/pid" 5
}

cmd_stopall() {
	[[ $# -eq 1 ]] || usage
	local dir f
	dir=$(abspath "$1")
	[[ -d $dir ]] || return 0
	for f in "$dir"/*/pid; do
		[[ -e $f ]] || continue
		pidfile_kill "$f" 5
	done
}

cmd_power() {
	[[ $# -eq 2 ]] || usage
	local dir v
	dir=$(abspath "$1")
	check_name "$2"
	[[ -r $dir/$2/power ]] || die "no power file $dir/$2/power"
	v=$(cat "$dir/$2/power")
	case $v in
	1) echo on ;;
	0) echo off ;;
	*) die "unexpected power value '$v' in $dir/$2/power" ;;
	esac
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
stopall) cmd_stopall "$@" ;;
power) cmd_power "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
