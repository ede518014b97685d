#!/bin/sh
# After install and removal (dpkg postinst/postrm, rpm %post/%postun) of a
# package that ships systemd units: make a running systemd see the change.
# Units are neither enabled nor started: an operator decides where a daemon
# runs.
#
# A fragment: the packager joins the fragments a package needs into one
# script, so it must not exit.
set -e
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
