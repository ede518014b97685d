#!/bin/sh
# After install and upgrade (dpkg postinst, rpm %post) of a package that
# ships tmpfiles.d snippets: create what they describe now instead of at the
# next boot, and fix the mode of a directory a daemon created earlier.
# Nothing of it can fail the install: without systemd-tmpfiles (a container,
# another init) or with a line it rejects (its message says why), the next
# boot or the daemon that needs the directory creates it.
#
# A fragment: the packager joins the fragments a package needs into one
# script, so it must not exit.
set -e
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles ${DPKG_ROOT:+--root="$DPKG_ROOT"} --create computeha.conf || true
fi
