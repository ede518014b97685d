// Package packaging assembles the .deb and .rpm packages of computeha with
// nfpm used as a library.
//
// What goes in is derived, never listed by hand: the binary says which
// programs it serves (computeha agents, KIND NAME lines) and each one
// becomes a symlink where its kind belongs; the binary renders its own man
// page and each agent's; the version is the one built into the binary
// (git describe), mapped to a version both dpkg and rpm order correctly.
// Only the assets that are not code (licence, copyright, changelog, example
// configuration, systemd units) come from the packaging/ directory.
//
// Both formats hold the same files, except for each format's own
// documentation conventions: Debian's copyright file, changelog.Debian.gz
// and lintian overrides, and RPM's licence directory (the RPM changelog
// lives in the package header).
package packaging
