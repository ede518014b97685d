#!/usr/bin/env bash
# A private MariaDB server for the history store's `mariadb` test suite.
#
#   mariadb.sh start DIR   start mariadbd (installing mariadb-server if it is
#                          missing), print the socket path on stdout
#   mariadb.sh stop DIR    shut it down cleanly
#
# Everything lives under DIR: the datadir (DIR/data), the unix socket and pid
# files (DIR/run, mode 700), logs (DIR/log). The server listens on no TCP port
# at all (--skip-networking) and reads no configuration file (--no-defaults),
# so it cannot collide with another MariaDB on the machine (the system
# service, or one another test runs). It is tracked by pid + start time and
# never selected by name.
#
# The tests connect as user "computeha" without a password, which is safe
# only because the socket is in a directory that only root can enter.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../../test/harness/lib.sh
. "$HERE/../../../test/harness/lib.sh"

usage() {
	echo "usage: ${0##*/} start|stop DIR" >&2
	exit 2
}

START_TIMEOUT=60
POLICY=/usr/sbin/policy-rc.d
# The marker line identifies a policy-rc.d this script wrote, so that it
# only ever removes its own.
POLICY_MARK='# computeha history test: temporary, keeps postinst from starting services'

# install_server: apt-get install mariadb-server without letting its
# postinst start the system service (which would take the default socket
# and port 3306). An existing policy-rc.d is left alone: it belongs to
# someone else and already decides what may start.
install_server() {
	local ours=0
	note "installing mariadb-server"
	if [[ ! -e $POLICY ]]; then
		printf '#!/bin/sh\n%s\nexit 101\n' "$POLICY_MARK" >"$POLICY"
		chmod 755 "$POLICY"
		ours=1
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mariadb-server >&2 || rc=$?
	if ((ours)) && grep -qxF "$POLICY_MARK" "$POLICY" 2>/dev/null; then
		rm -f "$POLICY"
	fi
	((rc == 0)) || die "apt-get install mariadb-server failed ($rc)"
}

start() {
	local dir=$1 pid
	local sock=$dir/run/mysqld.sock pidst=$dir/run/mariadbd.pidst
	if pidfile_alive "$pidst"; then
		note "already running"
		echo "$sock"
		return 0
	fi
	if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null; then
		install_server
	fi
	need_cmd mariadbd mariadb-install-db mariadb mariadb-admin
	mkdir -p "$dir/data" "$dir/run" "$dir/log"
	chmod 700 "$dir" "$dir/run"
	if [[ ! -d $dir/data/mysql ]]; then
		mariadb-install-db --no-defaults --datadir="$dir/data" --user=root \
			--auth-root-authentication-method=socket --skip-test-db \
			>"$dir/log/install.log" 2>&1 || die "mariadb-install-db failed, see $dir/log/install.log"
	fi
	# Durability settings stay at their defaults (innodb_flush_log_at_trx_commit=1):
	# the suite checks the store against a server configured as in production.
	mariadbd --no-defaults --user=root \
		--datadir="$dir/data" --socket="$sock" --pid-file="$dir/run/mysqld.pid" \
		--skip-networking --skip-name-resolve --skip-log-bin \
		--log-error="$dir/log/mariadb.err" \
		--innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
		</dev/null >>"$dir/log/mariadbd.out" 2>&1 &
	pid=$!
	pidfile_write "$pidst" "$pid"

	local deadline=$(($(now_ms) + START_TIMEOUT * 1000))
	until mariadb-admin --no-defaults --socket="$sock" -uroot ping >/dev/null 2>&1; do
		if ! pidfile_alive "$pidst"; then
			tail -n 20 "$dir/log/mariadb.err" >&2 || true
			die "mariadbd exited during start-up"
		fi
		if (($(now_ms) > deadline)); then
			pidfile_kill "$pidst" 30
			die "mariadbd did not answer within ${START_TIMEOUT}s"
		fi
		sleep 0.1
	done
	# SQL goes through stdin, so nothing sensitive is ever in argv.
	mariadb --no-defaults --socket="$sock" -uroot <<-'SQL'
		CREATE USER IF NOT EXISTS 'computeha'@'localhost';
		GRANT ALL PRIVILEGES ON *.* TO 'computeha'@'localhost';
	SQL
	note "mariadbd $pid ready on $sock"
	echo "$sock"
}

stop() {
	local dir=$1 pidst=$1/run/mariadbd.pidst
	if pidfile_alive "$pidst"; then
		# SIGTERM is mariadbd's clean shutdown; give InnoDB time to flush.
		pidfile_kill "$pidst" 60
		note "mariadbd stopped"
	else
		rm -f "$pidst"
	fi
	rm -f "$dir/run/mysqld.sock" "$dir/run/mysqld.sock.lock"
}

[[ $# -eq 2 ]] || usage
need_root
DIR=$(abspath "$2")
check_safe_path "$DIR"
case $1 in
start) start "$DIR" ;;
stop) stop "$DIR" ;;
*) usage ;;
esac
