// Command sidetrace runs the tracing sidecar: with no arguments it proxies, configured by the environment
// (sidetrace -h lists every variable).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sidetrace/sidetrace/config"
	"github.com/sidetrace/sidetrace/internal/sidecar"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			config.Usage(stdout)
			return 0
		case "-version", "--version", "version":
			fmt.Fprintln(stdout, "sidetrace", sidecar.Version)
			return 0
		default:
			fmt.Fprintf(stderr, "sidetrace: unknown argument %q (sidetrace takes no arguments; -h lists the environment variables)\n", a)
			return 2
		}
	}
	cfg, err := config.Load(environ)
	if err != nil {
		fmt.Fprintf(stderr, "sidetrace: %v\n", err)
		return 1
	}
	ctx := context.Background()
	gc := newGCTuning(environ)
	gc.startup()
	sc, err := sidecar.Start(ctx, cfg, sidecar.Options{Stdout: stdout, Stderr: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "sidetrace: %v\n", oneLine(err))
		return 1
	}
	gc.serving()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if err := sc.ReloadPlugins(ctx); err != nil {
				fmt.Fprintf(stderr, "sidetrace: plugin reload: %v\n", oneLine(err))
			}
			continue
		}
		break
	}
	drain, cancel := context.WithTimeout(ctx, cfg.Proxy.DrainTimeout)
	defer cancel()
	if err := sc.Shutdown(drain); err != nil {
		fmt.Fprintf(stderr, "sidetrace: shutdown: %v\n", oneLine(err))
	}
	return 0
}

// oneLine keeps an error on one line, as start-up errors are read in container logs.
func oneLine(err error) string {
	s := err.Error()
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
