# shellcheck shell=bash
# Helpers shared by the harness scripts (sourced, not executed).
#
# Processes are tracked through pid files holding "PID STARTTIME", where
# STARTTIME is field 22 of /proc/PID/stat (clock ticks since boot). A pid is
# only signalled when its current start time still matches the recorded one,
# so a recycled pid is never hit. Processes are never selected by name.

# die MESSAGE...: print an error and exit non-zero.
die() {
	printf '%s: error: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

# note MESSAGE...: progress message on stderr (stdout is kept for results).
note() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

need_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root"
}

# need_cmd CMD...: fail clearly when a tool is missing (run deps.sh first).
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "'$c' not found (run test/harness/deps.sh)"
	done
}

# abspath PATH: absolute path (the directory itself need not exist yet).
abspath() {
	local p=$1
	[[ $p == /* ]] || p="$PWD/$p"
	# Collapse "/./" and duplicate slashes; ".." is left alone (rejected later).
	p=$(printf '%s' "$p" | sed -e 's#/\./#/#g' -e 's#//*#/#g' -e 's#/\.$##' -e 's#\(.\)/$#\1#')
	printf '%s\n' "$p"
}

# check_safe_path PATH: paths end up in config files, in mount options (where
# "," and ":" are separators) and in command lines that daemons hand to a
# shell (ipmi_sim runs its chassis script through popen), so only characters
# that mean nothing there are accepted.
check_safe_path() {
	local re='^/[A-Za-z0-9._/+=@%^~-]*$'
	[[ $1 =~ $re ]] || die "path '$1' must be absolute and use only [A-Za-z0-9._/+=@%^~-]"
	[[ $1 != *..* ]] || die "path '$1' must not contain '..'"
}

# proc_field PID N: field N of /proc/PID/stat (N >= 3). The command name
# (field 2) may contain spaces and parentheses, so cut after the last ')'.
proc_field() {
	local stat rest i=$(($2 - 3))
	local -a f
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	rest=${stat##*) }
	read -r -a f <<<"$rest"
	[[ $i -ge 0 && $i -lt ${#f[@]} ]] || return 1
	printf '%s\n' "${f[i]}"
}

proc_starttime() { proc_field "$1" 22; }

# proc_matches PID START: true while PID is the same process (start time
# unchanged) and has not exited (zombies count as gone: without an init that
# reaps them they can linger).
proc_matches() {
	local st state
	st=$(proc_field "$1" 22) || return 1
	[[ $st == "$2" ]] || return 1
	state=$(proc_field "$1" 3) || return 1
	[[ $state != Z && $state != X ]]
}

# pidfile_write FILE PID: record PID and its start time.
pidfile_write() {
	local st
	st=$(proc_starttime "$2") || die "process $2 vanished before it could be recorded"
	printf '%s %s\n' "$2" "$st" >"$1.tmp"
	mv -f "$1.tmp" "$1"
}

# pidfile_read FILE: prints "PID START" if the file is well formed.
pidfile_read() {
	local pid st
	[[ -r $1 ]] || return 1
	read -r pid st <"$1" || return 1
	[[ $pid =~ ^[0-9]+$ && $st =~ ^[0-9]+$ ]] || return 1
	printf '%s %s\n' "$pid" "$st"
}

# pidfile_alive FILE: true if the recorded process is still running.
pidfile_alive() {
	local rec
	rec=$(pidfile_read "$1") || return 1
	# shellcheck disable=SC2086
	proc_matches $rec
}

# pidfile_pid FILE: print the recorded pid if that process is still running.
pidfile_pid() {
	local pid st
	read -r pid st < <(pidfile_read "$1") || return 1
	proc_matches "$pid" "$st" || return 1
	echo "$pid"
}

# wait_gone PID START TIMEOUT_SECONDS: wait until the process has exited.
wait_gone() {
	local pid=$1 st=$2 deadline
	deadline=$(($(date +%s%N) / 1000000 + $3 * 1000))
	while proc_matches "$pid" "$st"; do
		(($(date +%s%N) / 1000000 < deadline)) || return 1
		sleep 0.05
	done
	return 0
}

# kill_verified PID START [TERM_TIMEOUT]: SIGTERM, then SIGKILL after the
# timeout (default 10 s). Signals only if the start time still matches.
kill_verified() {
	local pid=$1 st=$2 t=${3:-10}
	proc_matches "$pid" "$st" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait_gone "$pid" "$st" "$t" && return 0
	note "process $pid ignored SIGTERM for ${t}s, sending SIGKILL"
	proc_matches "$pid" "$st" && kill -KILL "$pid" 2>/dev/null
	wait_gone "$pid" "$st" 5 || die "process $pid did not die"
}

# pidfile_kill FILE [TERM_TIMEOUT]: kill the recorded process, drop the file.
pidfile_kill() {
	local rec
	if rec=$(pidfile_read "$1"); then
		# shellcheck disable=SC2086
		kill_verified $rec "${2:-10}"
	fi
	rm -f "$1"
}

# now_ms: milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ns_id PID KIND: namespace identity of a process, e.g. "mnt:[4026532201]".
ns_id() { readlink "/proc/$1/ns/$2" 2>/dev/null; }

# ns_members KIND ID [EXCLUDE_PID]: pids (one per line, not zombies) whose
# namespace of the given kind is ID. This is how the harness finds every
# process of a simulated node without looking at process names.
ns_members() {
	local kind=$1 id=$2 skip=${3:-} pat p
	[[ -n $id ]] || return 0
	# find(1) -lname takes a glob: escape the brackets of "mnt:[...]".
	pat=${id//[/\\[}
	pat=${pat//]/\\]}
	find /proc -mindepth 3 -maxdepth 3 -path "/proc/[0-9]*/ns/$kind" -lname "$pat" 2>/dev/null |
		while IFS=/ read -r _ _ p _; do
			[[ $p != "$skip" ]] || continue
			case $(proc_field "$p" 3 || echo X) in Z | X) continue ;; esac
			echo "$p"
		done
}

# signal_if_member SIG PID KIND ID: signal PID only if it is in the namespace;
# the start time is read before and after the check so that a pid recycled in
# between is not hit.
signal_if_member() {
	local sig=$1 p=$2 kind=$3 id=$4 st
	st=$(proc_starttime "$p") || return 0
	[[ $(ns_id "$p" "$kind") == "$id" ]] || return 0
	proc_matches "$p" "$st" || return 0
	kill "-$sig" "$p" 2>/dev/null || true
}

# ns_kill_all KIND ID TERM_TIMEOUT [EXCLUDE_PID]: SIGTERM every process in the
# namespace, wait up to TERM_TIMEOUT seconds, SIGKILL what is left, and wait
# (5 s) until none remains.
ns_kill_all() {
	local kind=$1 id=$2 t=$3 skip=${4:-} p deadline
	for p in $(ns_members "$kind" "$id" "$skip"); do
		signal_if_member TERM "$p" "$kind" "$id"
	done
	deadline=$(($(now_ms) + t * 1000))
	while [[ -n $(ns_members "$kind" "$id" "$skip") ]] && (($(now_ms) < deadline)); do
		sleep 0.1
	done
	for p in $(ns_members "$kind" "$id" "$skip"); do
		signal_if_member KILL "$p" "$kind" "$id"
	done
	deadline=$(($(now_ms) + 5000))
	while [[ -n $(ns_members "$kind" "$id" "$skip") ]]; do
		(($(now_ms) < deadline)) || return 1
		sleep 0.1
	done
}

# ns_members_of KIND ID...: "PID ID" for every live process (not a zombie)
# whose namespace of the given kind is one of the IDs, found with a single
# pass over /proc (ns_members scans /proc once per namespace).
ns_members_of() {
	local kind=$1 p id
	shift
	[[ $# -gt 0 ]] || return 0
	find /proc -mindepth 3 -maxdepth 3 -path "/proc/[0-9]*/ns/$kind" -printf '%h %l\n' 2>/dev/null |
		awk -v ids="$*" 'BEGIN { n = split(ids, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
			want[$2] { split($1, d, "/"); print d[3], $2 }' |
		while read -r p id; do
			case $(proc_field "$p" 3 || echo X) in Z | X) continue ;; esac
			echo "$p $id"
		done
}
