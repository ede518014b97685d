package packaging

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/goreleaser/nfpm/v2"
)

// topLevelExit finds an exit at the start of a line: in a fragment it would
// end the joined script before the fragments after it ran.
var topLevelExit = regexp.MustCompile(`(?m)^exit\b`)

// MaintainerScripts writes the maintainer scripts the assets call for into
// dir and returns them for nfpm. The post-install script (dpkg postinst,
// rpm %post) creates the directories of the tmpfiles.d snippets and makes
// systemd reload its units; the post-removal script (dpkg postrm, rpm
// %postun) reloads units. Each part is there only when the package ships
// what it is for, so a package with neither snippets nor units has no
// script at all.
func MaintainerScripts(assets, dir string) (nfpm.Scripts, error) {
	units, err := Units(assets)
	if err != nil {
		return nfpm.Scripts{}, err
	}
	snippets, err := Tmpfiles(assets)
	if err != nil {
		return nfpm.Scripts{}, err
	}
	scripts := filepath.Join(assets, assetScriptDir)
	var post, postrm []string
	if len(snippets) > 0 {
		post = append(post, filepath.Join(scripts, tmpfilesCreate))
	}
	if len(units) > 0 {
		post = append(post, filepath.Join(scripts, systemdReload))
		postrm = append(postrm, filepath.Join(scripts, systemdReload))
	}
	var s nfpm.Scripts
	if s.PostInstall, err = joinScripts(filepath.Join(dir, "postinst"), post); err != nil {
		return nfpm.Scripts{}, err
	}
	if s.PostRemove, err = joinScripts(filepath.Join(dir, "postrm"), postrm); err != nil {
		return nfpm.Scripts{}, err
	}
	return s, nil
}

// joinScripts writes the fragments, in order, as one sh script at dst and
// returns dst, or "" (no script) for no fragment. Each fragment is a
// complete script that can be read and checked alone; its #! line is
// dropped, and it must not exit.
func joinScripts(dst string, fragments []string) (string, error) {
	if len(fragments) == 0 {
		return "", nil
	}
	out := []byte("#!/bin/sh\n")
	for _, f := range fragments {
		body, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("maintainer script: %w", err)
		}
		if bytes.HasPrefix(body, []byte("#!")) {
			if _, rest, ok := bytes.Cut(body, []byte("\n")); ok {
				body = rest
			} else {
				body = nil
			}
		}
		if topLevelExit.Match(body) {
			return "", fmt.Errorf("maintainer script fragment %s exits, which would skip what follows it", filepath.Base(f))
		}
		out = append(out, '\n')
		out = append(out, body...)
		if len(body) > 0 && body[len(body)-1] != '\n' {
			out = append(out, '\n')
		}
	}
	if err := os.WriteFile(dst, out, 0o755); err != nil {
		return "", fmt.Errorf("maintainer script: %w", err)
	}
	return dst, nil
}
