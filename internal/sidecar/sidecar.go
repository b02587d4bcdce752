// Package sidecar assembles a running sidetrace from its configuration: the telemetry pipeline, the plugins,
// the proxy's listeners and the admin server, with an orderly drain on shutdown. cmd/sidetrace runs one; tests
// run several in one process.
package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/config"
	"github.com/sidetrace/sidetrace/internal/sampling"
	"github.com/sidetrace/sidetrace/internal/telemetry"
	"github.com/sidetrace/sidetrace/plugins"
	"github.com/sidetrace/sidetrace/propagators"
	"github.com/sidetrace/sidetrace/proxy"
)

// Version is sidetrace's version, recorded on the resource.
const Version = "0.1.0"

// Sidecar is a running sidetrace.
type Sidecar struct {
	cfg      *config.Config
	log      *slog.Logger
	pipeline *telemetry.Pipeline
	plugins  *plugins.Host
	proxy    *proxy.Proxy
	ready    atomic.Bool
	servers  []*listener
	admin    *listener
	stopBg   context.CancelFunc
	bg       sync.WaitGroup
	once     sync.Once
}

type listener struct {
	name string
	srv  server
	ln   net.Listener
}

// server is what a listener's server does: proxy.Server for the hops, http.Server for the admin listener.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// Options are what the environment does not configure: where logs go.
type Options struct {
	Stdout io.Writer // access log; nil = os.Stdout
	Stderr io.Writer // sidetrace's own log; nil = os.Stderr
}

// Start builds everything and starts serving. The returned sidecar is ready (its /readyz answers 200).
func Start(ctx context.Context, cfg *config.Config, o Options) (_ *Sidecar, err error) {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Proxy.LogLevel))
	log := slog.New(slog.NewJSONHandler(o.Stderr, &slog.HandlerOptions{Level: level}))
	s := &Sidecar{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.abort()
		}
	}()

	extract, err := propagators.ParseExtract(cfg.Telemetry.Propagators)
	if err != nil {
		return nil, &config.Error{Var: "OTEL_PROPAGATORS", Err: err}
	}
	inject, err := propagators.ParseInject(cfg.Telemetry.Inject)
	if err != nil {
		return nil, &config.Error{Var: "SIDETRACE_INJECT", Err: err}
	}
	prop := propagators.New(extract, inject)

	keep := cfg.Sampling.KeepErrors || cfg.Sampling.KeepSlowerThan > 0
	sampler, err := sampling.New(cfg.Sampling.Sampler, cfg.Sampling.SamplerArg, sampling.WithRecordUnsampled(keep))
	if err != nil {
		return nil, err // already names the variable
	}

	if s.plugins, err = loadPlugins(ctx, cfg.Plugins, log); err != nil {
		return nil, err
	}
	if s.plugins != nil {
		// Compiling a Go guest leaves well over a hundred MB of garbage heap that the runtime would return
		// to the OS only slowly: measured with the three Go example plugins, RSS after start-up falls from
		// 234 MB to 96 MB with this.
		debug.FreeOSMemory()
	}
	var hook telemetry.SpanHook
	if s.plugins != nil {
		hook = s.plugins.ProcessSpans
	}
	s.pipeline, err = telemetry.New(ctx, telemetry.Options{
		Telemetry: cfg.Telemetry, Sampler: sampler, Hook: hook, Logger: log, Version: Version,
	})
	if err != nil {
		return nil, err
	}

	var access *slog.Logger
	if cfg.Proxy.AccessLog == "on" {
		access = slog.New(slog.NewJSONHandler(o.Stdout, nil))
	}
	s.proxy = proxy.New(proxy.Options{
		Tracer:              s.pipeline.Tracer(telemetry.ScopeName, trace.WithInstrumentationVersion(Version)),
		Propagator:          prop,
		Plugins:             s.plugins,
		AccessLog:           access,
		Logger:              log,
		DialTimeout:         cfg.Proxy.DialTimeout,
		UpstreamTimeout:     cfg.Proxy.UpstreamTimeout,
		MaxIdleConnsPerHost: cfg.Proxy.MaxIdleConns,
		UpstreamProtocol:    cfg.Proxy.UpstreamProtocol,
		TrustIncoming:       cfg.Sampling.TrustIncoming,
		KeepErrors:          cfg.Sampling.KeepErrors,
		KeepSlowerThan:      cfg.Sampling.KeepSlowerThan,
	})

	sopts := proxy.ServerOptions{ReadHeaderTimeout: cfg.Proxy.ReadHeaderTimeout, IdleTimeout: cfg.Proxy.IdleTimeout, Logger: log}
	if !config.Off(cfg.Proxy.InboundAddr) {
		up, _ := cfg.Proxy.UpstreamURL()
		if err := s.listen("inbound", "SIDETRACE_INBOUND_ADDR", cfg.Proxy.InboundAddr, proxy.NewServer(s.proxy.Inbound(up), sopts)); err != nil {
			return nil, err
		}
	}
	if !config.Off(cfg.Proxy.EgressAddr) {
		if err := s.listen("egress", "SIDETRACE_EGRESS_ADDR", cfg.Proxy.EgressAddr, proxy.NewServer(s.proxy.Egress(), sopts)); err != nil {
			return nil, err
		}
	}
	routes, _ := cfg.Proxy.Routes()
	for _, rt := range routes {
		rp := prop
		if rt.Inject != "" {
			spec, err := propagators.ParseInject(rt.Inject)
			if err != nil {
				return nil, &config.Error{Var: "SIDETRACE_EGRESS_ROUTES", Err: fmt.Errorf("route %s: %w", rt.Listen, err)}
			}
			rp = prop.WithInject(spec)
		}
		if err := s.listen("route "+rt.Listen, "SIDETRACE_EGRESS_ROUTES", rt.Listen, proxy.NewServer(s.proxy.Route(rt.Upstream, rp), sopts)); err != nil {
			return nil, err
		}
	}
	if !config.Off(cfg.Proxy.AdminAddr) {
		srv := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
		ln, err := net.Listen("tcp", cfg.Proxy.AdminAddr)
		if err != nil {
			return nil, &config.Error{Var: "SIDETRACE_ADMIN_ADDR", Err: err}
		}
		s.admin = &listener{name: "admin", srv: srv, ln: ln}
		go srv.Serve(ln)
	}
	for _, l := range s.servers {
		go l.srv.Serve(l.ln)
	}

	bg, cancel := context.WithCancel(context.Background())
	s.stopBg = cancel
	if s.plugins != nil && cfg.Plugins.WatchEvery > 0 {
		s.bg.Add(1)
		go func() { defer s.bg.Done(); s.plugins.Watch(bg, cfg.Plugins.WatchEvery) }()
	}
	s.ready.Store(true)
	log.Info("sidetrace ready", "listeners", s.Addrs(), "export", exportTarget(cfg.Telemetry), "sampler", sampler.Description())
	return s, nil
}

func exportTarget(t config.Telemetry) string {
	if u := t.TracesURL(); u != "" {
		return u
	}
	return "embedded store (/debug/traces)"
}

func (s *Sidecar) listen(name, envVar, addr string, srv server) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return &config.Error{Var: envVar, Err: err}
	}
	if strings.HasPrefix(name, "route ") && strings.HasSuffix(addr, ":0") {
		name = "route " + ln.Addr().String() // several routes on port 0 each get a name of their own
	}
	s.servers = append(s.servers, &listener{name: name, srv: srv, ln: ln})
	return nil
}

func loadPlugins(ctx context.Context, pc config.Plugins, log *slog.Logger) (*plugins.Host, error) {
	data, envVar := []byte(pc.JSON), "SIDETRACE_PLUGINS"
	if pc.File != "" {
		b, err := os.ReadFile(pc.File)
		if err != nil {
			return nil, &config.Error{Var: "SIDETRACE_PLUGINS_FILE", Err: err}
		}
		data, envVar = b, "SIDETRACE_PLUGINS_FILE"
	}
	if len(data) == 0 {
		return nil, nil
	}
	specs, err := plugins.ParseSpecs(data)
	if err != nil {
		return nil, &config.Error{Var: envVar, Err: err}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	return plugins.Load(ctx, specs, plugins.Options{
		CacheDir:    pc.CacheDir,
		Timeout:     pc.Timeout,
		MemoryLimit: uint64(pc.MemoryLimit),
		PoolSize:    pc.PoolSize,
		Logger:      log,
	})
}

// Addrs returns the bound address of each listener by name: "inbound", "egress", "admin", and "route ADDR"
// with the configured address (the bound one for a route configured on port 0).
func (s *Sidecar) Addrs() map[string]string {
	m := map[string]string{}
	for _, l := range s.servers {
		m[l.name] = l.ln.Addr().String()
	}
	if s.admin != nil {
		m["admin"] = s.admin.ln.Addr().String()
	}
	return m
}

// Store returns the embedded trace store, nil when exporting OTLP.
func (s *Sidecar) Store() *telemetry.Store { return s.pipeline.Store }

// ExportStats returns the export processor's counters.
func (s *Sidecar) ExportStats() telemetry.Stats { return s.pipeline.Processor.Stats() }

// Flush exports every finished span now. It first waits, within ctx, until no request is in flight: a hop ends
// its span after the client has the response (see proxy's direct path), so a client's last response can come
// before its span is queued.
func (s *Sidecar) Flush(ctx context.Context) error {
	st := s.proxy.Stats()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for st.Inbound.InFlight.Load()+st.Egress.InFlight.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush: requests still in flight: %w", ctx.Err())
		case <-tick.C:
		}
	}
	return s.pipeline.Provider.ForceFlush(ctx)
}

// ReloadPlugins recompiles changed plugin files (SIGHUP).
func (s *Sidecar) ReloadPlugins(ctx context.Context) error {
	if s.plugins == nil {
		return nil
	}
	return s.plugins.Reload(ctx)
}

// Shutdown drains: /readyz turns 503, listeners stop accepting, in-flight requests get until ctx's deadline
// (SIDETRACE_DRAIN_TIMEOUT) to finish, then open tunnels are closed, spans are flushed and plugins closed.
func (s *Sidecar) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.ready.Store(false)
		var wg sync.WaitGroup
		errs := make([]error, len(s.servers))
		for i, l := range s.servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if e := l.srv.Shutdown(ctx); e != nil {
					errs[i] = fmt.Errorf("%s: drain: %w", l.name, e)
					l.srv.Close()
				}
			}()
		}
		wg.Wait()
		s.proxy.Close()
		// Spans get a flush of their own, even when the drain used all its time.
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errs = append(errs, s.pipeline.Shutdown(flushCtx))
		s.stopBg()
		s.bg.Wait()
		if s.plugins != nil {
			errs = append(errs, s.plugins.Close(flushCtx))
		}
		if s.admin != nil {
			s.admin.srv.Close()
		}
		err = errors.Join(errs...)
	})
	return err
}

// abort releases what a failed Start had built.
func (s *Sidecar) abort() {
	for _, l := range s.servers {
		l.ln.Close()
	}
	if s.admin != nil {
		s.admin.ln.Close()
	}
	if s.pipeline != nil {
		_ = s.pipeline.Shutdown(context.Background())
	}
	if s.plugins != nil {
		_ = s.plugins.Close(context.Background())
	}
}

func (s *Sidecar) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /metrics", s.metrics)
	if s.cfg.Proxy.AdminPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if st := s.pipeline.Store; st != nil {
		h := st.Handler()
		mux.Handle("GET /debug/traces", h)
		mux.Handle("GET /debug/traces/{traceId}", h)
	} else {
		mux.HandleFunc("GET /debug/traces", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "the embedded store is off: spans are exported to " + s.cfg.Telemetry.TracesURL()})
		})
	}
	return mux
}

// metrics serves the counters in the Prometheus text format.
func (s *Sidecar) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	st := s.proxy.Stats()
	ex := s.pipeline.Processor.Stats()
	fmt.Fprintf(w, "# HELP sidetrace_requests_total Requests handled, by hop.\n# TYPE sidetrace_requests_total counter\n")
	fmt.Fprintf(w, "sidetrace_requests_total{hop=\"inbound\"} %d\nsidetrace_requests_total{hop=\"egress\"} %d\n", st.Inbound.Requests.Load(), st.Egress.Requests.Load())
	fmt.Fprintf(w, "# HELP sidetrace_requests_failed_total Requests sidetrace answered with 502, 503 or 504, by hop.\n# TYPE sidetrace_requests_failed_total counter\n")
	fmt.Fprintf(w, "sidetrace_requests_failed_total{hop=\"inbound\"} %d\nsidetrace_requests_failed_total{hop=\"egress\"} %d\n", st.Inbound.Failed.Load(), st.Egress.Failed.Load())
	fmt.Fprintf(w, "# HELP sidetrace_requests_in_flight Requests being handled, by hop.\n# TYPE sidetrace_requests_in_flight gauge\n")
	fmt.Fprintf(w, "sidetrace_requests_in_flight{hop=\"inbound\"} %d\nsidetrace_requests_in_flight{hop=\"egress\"} %d\n", st.Inbound.InFlight.Load(), st.Egress.InFlight.Load())
	for _, c := range []struct {
		name, help string
		v          uint64
	}{
		{"sidetrace_spans_enqueued_total", "Spans queued for export.", ex.Enqueued},
		{"sidetrace_spans_dropped_total", "Spans dropped because the export queue was full.", ex.Dropped},
		{"sidetrace_spans_exported_total", "Spans exported.", ex.Exported},
		{"sidetrace_spans_export_failed_total", "Spans in batches the exporter failed.", ex.Failed},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", c.name, c.help, c.name, c.name, c.v)
	}
	if s.plugins != nil {
		writePluginMetrics(w, s.plugins.Stats())
	}
}

var _ sdktrace.SpanExporter = (*telemetry.Store)(nil)

func writePluginMetrics(w io.Writer, st plugins.Stats) {
	for _, c := range []struct {
		name, help, typ string
		v               func(plugins.PluginStats) uint64
	}{
		{"sidetrace_plugin_calls_total", "Guest hook calls, by plugin.", "counter", func(p plugins.PluginStats) uint64 { return p.Calls }},
		{"sidetrace_plugin_failures_total", "Guest calls that trapped, timed out or returned garbage, by plugin.", "counter", func(p plugins.PluginStats) uint64 { return p.Failures }},
		{"sidetrace_plugin_timeouts_total", "Guest calls that overran SIDETRACE_PLUGIN_TIMEOUT, by plugin.", "counter", func(p plugins.PluginStats) uint64 { return p.Timeouts }},
		{"sidetrace_plugin_reloads_total", "Successful hot reloads, by plugin.", "counter", func(p plugins.PluginStats) uint64 { return p.Reloads }},
		{"sidetrace_plugin_reload_failures_total", "Reloads refused (the old module kept running), by plugin.", "counter", func(p plugins.PluginStats) uint64 { return p.ReloadFailures }},
		{"sidetrace_plugin_instances", "Live instances of the current module, by plugin.", "gauge", func(p plugins.PluginStats) uint64 { return uint64(p.Instances) }},
		{"sidetrace_plugin_memory_bytes", "Linear memory of the live instances, by plugin.", "gauge", func(p plugins.PluginStats) uint64 { return p.MemoryBytes }},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", c.name, c.help, c.name, c.typ)
		for _, p := range st.Plugins {
			fmt.Fprintf(w, "%s{plugin=%q} %d\n", c.name, p.Name, c.v(p))
		}
	}
}
