// Command migration runs the three-service bridge: a fleet in the middle of a migration, where orders still
// speaks B3 (Zipkin-era instrumentation), payments W3C Trace Context (OpenTelemetry) and ledger Jaeger's
// uber-trace-id, each behind its own sidetrace, and one request still makes one trace:
//
//	client -> [orders sidecar] -> orders (B3) -> [orders sidecar, egress route]
//	       -> [payments sidecar] -> payments (W3C) -> [payments sidecar, egress route]
//	       -> [ledger sidecar] -> ledger (Jaeger)
//
// Everything runs in this process on loopback. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	otlp := flag.String("otlp", "", "OTLP/HTTP base URL to export to, e.g. http://127.0.0.1:4318 (default: each sidecar's embedded store)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address of the entry (orders' sidecar inbound hop)")
	quiet := flag.Bool("q", false, "do not print the sidecars' access logs")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("migration: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var access io.Writer = os.Stdout
	if *quiet {
		access = nil
	}
	b, err := Start(ctx, Options{EntryAddr: *addr, OTLPEndpoint: *otlp, Env: []string{"OTEL_BSP_SCHEDULE_DELAY=200"},
		Stdout: access, Stderr: os.Stderr})
	if err != nil {
		log.Fatal(err)
	}
	describe(os.Stdout, b, *otlp)

	<-ctx.Done()
	stop()
	log.Print("stopping (spans are flushed first)")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		log.Fatal(err)
	}
}

// describe prints the entry, a request to try, where the trace goes and each sidecar's configuration.
func describe(w io.Writer, b *Bridge, otlp string) {
	fmt.Fprintf(w, "migration bridge: orders (B3) -> payments (W3C) -> ledger (Jaeger), each behind its own sidetrace\n\n")
	fmt.Fprintf(w, "entry (orders' sidecar): %s/\n", b.EntryURL())
	fmt.Fprintf(w, "try:\n  curl -i %s/order\n", b.EntryURL())
	fmt.Fprintf(w, "  curl -i -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' %s/order\n\n", b.EntryURL())
	if otlp != "" {
		fmt.Fprintf(w, "spans: exported to %s (one trace of 5 spans per request; the trace id is in the answer)\n\n", otlp)
	} else {
		fmt.Fprintf(w, "spans: each sidecar keeps its own in its embedded store; the trace id is in the answer:\n")
		for _, s := range b.Sidecars {
			fmt.Fprintf(w, "  curl http://%s/debug/traces/<traceId>   # %s\n", s.Addrs()["admin"], s.Name)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "each sidecar's environment, with the addresses it bound (what makes the bridge):\n")
	for _, s := range b.Sidecars {
		fmt.Fprintf(w, "  %s:\n", s.Name)
		for _, kv := range resolvedEnv(s) {
			fmt.Fprintf(w, "    %s\n", kv)
		}
	}
	fmt.Fprintf(w, "\nCtrl-C stops.\n")
}

// resolvedEnv is s.Env with the ports the kernel picked (":0") replaced by the bound ones, and without the
// demo's tuning (OTEL_BSP_*).
func resolvedEnv(s *Sidecar) []string {
	addrs := s.Addrs()
	var out []string
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "OTEL_BSP_"):
			continue
		case k == "SIDETRACE_INBOUND_ADDR":
			v = addrs["inbound"]
		case k == "SIDETRACE_ADMIN_ADDR":
			v = addrs["admin"]
		case k == "SIDETRACE_EGRESS_ROUTES" && strings.HasPrefix(v, routeListen+"="):
			route, _ := routeAddr(addrs)
			v = route + strings.TrimPrefix(v, routeListen)
		}
		out = append(out, k+"="+v)
	}
	return out
}
