// Command mkpackages builds the .deb and .rpm packages of computeha from a
// built binary (make build) and the assets under packaging/, and prints
// the path of each package. make packages runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/computeha/computeha/internal/packaging"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("mkpackages", flag.ContinueOnError)
	binary := fs.String("bin", "bin/computeha", "the built computeha binary")
	assets := fs.String("assets", "packaging", "directory of the packaging assets")
	out := fs.String("out", "dist", "directory to write the packages to")
	formats := fs.String("formats", "deb,rpm", "comma-separated package formats: deb, rpm")
	maintainer := fs.String("maintainer", "computeha maintainers <maintainers@computeha.example.org>", "package maintainer, \"Name <address>\"")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "mkpackages: unexpected arguments %q\n", fs.Args())
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	mtime, err := packaging.SourceDate(ctx, ".")
	if err != nil {
		log.Error("mkpackages", "err", err)
		return 1
	}
	paths, err := packaging.Build(ctx, packaging.Options{
		Binary: *binary, Assets: *assets, OutDir: *out, Formats: strings.Split(*formats, ","),
		Maintainer: *maintainer, MTime: mtime, Logger: log,
	})
	if err != nil {
		log.Error("mkpackages", "err", err)
		return 1
	}
	for _, p := range paths {
		fmt.Println(p)
	}
	return 0
}
