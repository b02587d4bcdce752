// Package config reads sidetrace's configuration from the environment.
//
// Every setting is a field of one of the structs below, tagged with its environment variable (`env`), its
// default (`envDefault`) and a one-line description (`help`). `sidetrace -h` prints the same tags (see Usage), so
// the help text cannot drift from what is parsed. Values are validated once, at start-up; an error is one line
// naming the variable and the problem.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is the whole configuration, one struct per concern.
type Config struct {
	Proxy     Proxy     `group:"Proxy"`
	Telemetry Telemetry `group:"Telemetry and export (standard OpenTelemetry variables where one exists)"`
	Sampling  Sampling  `group:"Sampling"`
	Plugins   Plugins   `group:"WASM plugins"`
}

// Proxy configures the listeners and the upstream connections.
type Proxy struct {
	InboundAddr       string        `env:"SIDETRACE_INBOUND_ADDR" envDefault:"0.0.0.0:15006" help:"listen address of the inbound hop (traffic to the local service), or \"off\""`
	Upstream          string        `env:"SIDETRACE_UPSTREAM" help:"URL of the local service the inbound hop forwards to, e.g. http://127.0.0.1:8080 (required unless the inbound hop is off)"`
	UpstreamProtocol  string        `env:"SIDETRACE_UPSTREAM_PROTOCOL" envDefault:"auto" help:"protocol to the upstream: auto (cleartext HTTP/2 for gRPC, which needs it, HTTP/1.1 for the rest), http1 or h2c (HTTP/2 with prior knowledge for everything)"`
	EgressAddr        string        `env:"SIDETRACE_EGRESS_ADDR" envDefault:"127.0.0.1:15001" help:"listen address of the egress forward proxy (point the application's HTTP_PROXY here), or \"off\""`
	EgressRoutes      string        `env:"SIDETRACE_EGRESS_ROUTES" help:"fixed egress listeners, comma separated LISTEN_ADDR=UPSTREAM_URL[;inject=FORMATS], e.g. 127.0.0.1:16001=http://orders:8080"`
	AdminAddr         string        `env:"SIDETRACE_ADMIN_ADDR" envDefault:"127.0.0.1:15000" help:"listen address of the admin server (/healthz, /readyz, /metrics, /debug/traces), or \"off\""`
	DialTimeout       time.Duration `env:"SIDETRACE_DIAL_TIMEOUT" envDefault:"5s" help:"time allowed to connect to an upstream; failing gives 502"`
	UpstreamTimeout   time.Duration `env:"SIDETRACE_UPSTREAM_TIMEOUT" envDefault:"30s" help:"time allowed for an upstream to send its response headers; exceeding it gives 504 (streams may then run any length)"`
	ReadHeaderTimeout time.Duration `env:"SIDETRACE_READ_HEADER_TIMEOUT" envDefault:"10s" help:"time allowed for a client to send its request headers"`
	IdleTimeout       time.Duration `env:"SIDETRACE_IDLE_TIMEOUT" envDefault:"120s" help:"how long an idle client keep-alive connection stays open"`
	MaxIdleConns      int           `env:"SIDETRACE_MAX_IDLE_CONNS_PER_HOST" envDefault:"256" help:"idle upstream connections kept per upstream host for reuse"`
	DrainTimeout      time.Duration `env:"SIDETRACE_DRAIN_TIMEOUT" envDefault:"15s" help:"on SIGTERM/SIGINT, how long in-flight requests may take to finish before spans are flushed and the process exits"`
	AdminPprof        bool          `env:"SIDETRACE_ADMIN_PPROF" envDefault:"false" help:"serve Go's profiler at /debug/pprof/ on the admin server (CPU and heap profiles of the proxy itself)"`
	AccessLog         string        `env:"SIDETRACE_ACCESS_LOG" envDefault:"on" help:"one JSON access-log line per request on stdout: on or off"`
	LogLevel          string        `env:"SIDETRACE_LOG_LEVEL" envDefault:"info" help:"level of sidetrace's own log on stderr: debug, info, warn or error"`
}

// Telemetry configures the resource, propagation and export of spans.
type Telemetry struct {
	ServiceName         string `env:"OTEL_SERVICE_NAME" help:"service.name of the spans (default unknown_service:sidetrace)"`
	ResourceAttributes  string `env:"OTEL_RESOURCE_ATTRIBUTES" help:"extra resource attributes, key1=value1,key2=value2 (values percent-encoded)"`
	Endpoint            string `env:"OTEL_EXPORTER_OTLP_ENDPOINT" help:"OTLP/HTTP base URL, e.g. http://collector:4318 (spans go to /v1/traces); unset with no traces endpoint = the embedded store"`
	TracesEndpoint      string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" help:"OTLP/HTTP traces URL used as is, e.g. http://collector:4318/v1/traces; wins over OTEL_EXPORTER_OTLP_ENDPOINT"`
	Headers             string `env:"OTEL_EXPORTER_OTLP_HEADERS" help:"headers sent with each export, key1=value1,key2=value2 (values percent-encoded)"`
	TracesHeaders       string `env:"OTEL_EXPORTER_OTLP_TRACES_HEADERS" help:"like OTEL_EXPORTER_OTLP_HEADERS, for traces only; merged over it"`
	Compression         string `env:"OTEL_EXPORTER_OTLP_COMPRESSION" help:"compression of the export requests: gzip or none (default none)"`
	TracesCompression   string `env:"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION" help:"like OTEL_EXPORTER_OTLP_COMPRESSION, for traces only; wins over it"`
	Certificate         string `env:"OTEL_EXPORTER_OTLP_CERTIFICATE" help:"PEM file of the CA certificates that verify an https collector (default: the system's)"`
	TracesCertificate   string `env:"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE" help:"like OTEL_EXPORTER_OTLP_CERTIFICATE, for traces only; wins over it"`
	ClientCertificate   string `env:"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE" help:"PEM file of the client certificate for mutual TLS with the collector (with OTEL_EXPORTER_OTLP_CLIENT_KEY)"`
	TracesClientCert    string `env:"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE" help:"like OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, for traces only; wins over it"`
	ClientKey           string `env:"OTEL_EXPORTER_OTLP_CLIENT_KEY" help:"PEM file of the client's private key for mutual TLS with the collector"`
	TracesClientKey     string `env:"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY" help:"like OTEL_EXPORTER_OTLP_CLIENT_KEY, for traces only; wins over it"`
	TimeoutMillis       int    `env:"OTEL_EXPORTER_OTLP_TIMEOUT" envDefault:"10000" help:"time allowed for one export, in milliseconds"`
	QueueSize           int    `env:"OTEL_BSP_MAX_QUEUE_SIZE" envDefault:"2048" help:"finished spans waiting for export; when full, spans are dropped and counted (never blocks a request)"`
	BatchSize           int    `env:"OTEL_BSP_MAX_EXPORT_BATCH_SIZE" envDefault:"512" help:"spans per export"`
	ScheduleDelayMillis int    `env:"OTEL_BSP_SCHEDULE_DELAY" envDefault:"1000" help:"longest wait before a partial batch is exported, in milliseconds"`
	StoreTraces         int    `env:"SIDETRACE_STORE_TRACES" envDefault:"1000" help:"traces kept by the embedded store (used when no OTLP endpoint is set), served at /debug/traces"`
	Propagators         string `env:"OTEL_PROPAGATORS" envDefault:"tracecontext,baggage,b3,b3multi,jaeger,xray" help:"formats read from requests, in priority order: tracecontext, baggage, b3, b3multi, jaeger, xray, none"`
	Inject              string `env:"SIDETRACE_INJECT" envDefault:"preserve,tracecontext" help:"formats written on forwarded requests: any OTEL_PROPAGATORS name, and preserve (the formats that arrived)"`
}

// Sampling configures which traces are recorded and exported.
type Sampling struct {
	Sampler        string        `env:"OTEL_TRACES_SAMPLER" envDefault:"parentbased_always_on" help:"always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio, ratelimited, parentbased_ratelimited, adaptive, parentbased_adaptive"`
	SamplerArg     string        `env:"OTEL_TRACES_SAMPLER_ARG" help:"the sampler's argument: a ratio in [0, 1] (traceidratio), traces per second (ratelimited, adaptive)"`
	TrustIncoming  bool          `env:"SIDETRACE_TRUST_INCOMING" envDefault:"true" help:"use the incoming trace context as parent; false at an untrusted edge starts a new trace linked to the incoming one"`
	KeepErrors     bool          `env:"SIDETRACE_KEEP_ERRORS" envDefault:"true" help:"export the hop's span even when unsampled if it failed (5xx; 4xx too on egress CLIENT spans; transport errors; a plugin's mark)"`
	KeepSlowerThan time.Duration `env:"SIDETRACE_KEEP_SLOWER_THAN" envDefault:"0s" help:"export the hop's span even when unsampled if it took longer than this (0 = off)"`
}

// Plugins configures the WebAssembly plugins run on every request.
type Plugins struct {
	JSON        string        `env:"SIDETRACE_PLUGINS" help:"JSON array of plugins in run order: [{\"name\":\"pii\",\"path\":\"/plugins/pii.wasm\",\"config\":{},\"failure\":\"open\"}]"`
	File        string        `env:"SIDETRACE_PLUGINS_FILE" help:"file holding the SIDETRACE_PLUGINS JSON, for configs too long for a variable"`
	CacheDir    string        `env:"SIDETRACE_PLUGIN_CACHE_DIR" help:"directory for the compiled-module cache (faster restarts); unset = no cache"`
	Timeout     time.Duration `env:"SIDETRACE_PLUGIN_TIMEOUT" envDefault:"5ms" help:"deadline for one plugin call; exceeding it discards the instance and counts as a plugin failure"`
	MemoryLimit ByteSize      `env:"SIDETRACE_PLUGIN_MEMORY_LIMIT" envDefault:"64MiB" help:"memory cap per plugin instance (KiB, MiB, GiB suffixes)"`
	PoolSize    int           `env:"SIDETRACE_PLUGIN_POOL_SIZE" envDefault:"0" help:"instances per plugin, busy and idle (a call finding all busy waits up to SIDETRACE_PLUGIN_TIMEOUT); 0 = GOMAXPROCS"`
	WatchEvery  time.Duration `env:"SIDETRACE_PLUGIN_WATCH" envDefault:"2s" help:"how often plugin files are checked for changes (hot reload; SIGHUP reloads at once); 0 = off"`
}

// ByteSize is a size in bytes written with an optional KiB, MiB or GiB suffix.
type ByteSize uint64

// ParseByteSize parses "16MiB", "512KiB", "1GiB" or a plain number of bytes.
func ParseByteSize(s string) (ByteSize, error) {
	mult := uint64(1)
	num := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a size (want e.g. 16MiB, 512KiB or a number of bytes)", s)
	}
	return ByteSize(n * mult), nil
}

// Route is one fixed egress listener from SIDETRACE_EGRESS_ROUTES.
type Route struct {
	Listen   string
	Upstream *url.URL
	Inject   string // per-route SIDETRACE_INJECT override; "" = the global one
}

// Routes parses SIDETRACE_EGRESS_ROUTES.
func (p Proxy) Routes() ([]Route, error) {
	var routes []Route
	if strings.TrimSpace(p.EgressRoutes) == "" {
		return nil, nil
	}
	for _, entry := range strings.Split(p.EgressRoutes, ",") {
		entry = strings.TrimSpace(entry)
		listen, rest, ok := strings.Cut(entry, "=")
		if !ok || entry == "" {
			return nil, fmt.Errorf("entry %q is not LISTEN_ADDR=UPSTREAM_URL", entry)
		}
		target, opts, _ := strings.Cut(rest, ";")
		if err := checkAddr(listen); err != nil {
			return nil, fmt.Errorf("entry %q: %w", entry, err)
		}
		u, err := upstreamURL(target)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", entry, err)
		}
		r := Route{Listen: listen, Upstream: u}
		if opts != "" {
			k, v, ok := strings.Cut(opts, "=")
			if !ok || k != "inject" {
				return nil, fmt.Errorf("entry %q: option %q is not inject=FORMATS", entry, opts)
			}
			r.Inject = strings.ReplaceAll(v, "+", ",")
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// UpstreamURL returns the parsed SIDETRACE_UPSTREAM.
func (p Proxy) UpstreamURL() (*url.URL, error) { return upstreamURL(p.Upstream) }

func upstreamURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// URL with a host", s)
	}
	return u, nil
}

func checkAddr(addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not HOST:PORT", addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no valid port", addr)
	}
	return nil
}

// Off reports whether a listen address setting disables its listener.
func Off(addr string) bool { return addr == "off" || addr == "" }

// Error is a configuration error: the variable and what is wrong with it.
type Error struct {
	Var string
	Err error
}

func (e *Error) Error() string { return e.Var + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func varErr(name string, err error) error { return &Error{Var: name, Err: err} }

// Load reads the configuration from environ (os.Environ's form, KEY=VALUE) and validates it.
func Load(environ []string) (*Config, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c Config
	err := env.ParseWithOptions(&c, env.Options{
		Environment: vars,
		FuncMap: map[reflect.Type]env.ParserFunc{
			reflect.TypeOf(ByteSize(0)): func(v string) (any, error) { return ParseByteSize(v) },
		},
	})
	if err != nil {
		return nil, explain(err, vars)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// explain turns an env parse error into one line naming the variable.
func explain(err error, vars map[string]string) error {
	var agg env.AggregateError
	if errors.As(err, &agg) && len(agg.Errors) > 0 {
		err = agg.Errors[0]
	}
	var pe env.ParseError
	if errors.As(err, &pe) {
		for _, f := range fields() {
			if f.field.Name == pe.Name && f.field.Type == pe.Type {
				return varErr(f.env, fmt.Errorf("%q is not a valid %s", vars[f.env], typeWord(pe.Type)))
			}
		}
	}
	return fmt.Errorf("config: %w", err)
}

func typeWord(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		return "duration (want e.g. 500ms, 5s, 2m)"
	case reflect.TypeOf(ByteSize(0)):
		return "size (want e.g. 16MiB)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean (want true or false)"
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return "whole number"
	}
	return t.String()
}

func (c *Config) validate() error {
	p := &c.Proxy
	for _, a := range []struct{ name, val string }{
		{"SIDETRACE_INBOUND_ADDR", p.InboundAddr},
		{"SIDETRACE_EGRESS_ADDR", p.EgressAddr},
		{"SIDETRACE_ADMIN_ADDR", p.AdminAddr},
	} {
		if !Off(a.val) {
			if err := checkAddr(a.val); err != nil {
				return varErr(a.name, err)
			}
		}
	}
	if !Off(p.InboundAddr) {
		if p.Upstream == "" {
			return varErr("SIDETRACE_UPSTREAM", errors.New("required: the local service's URL, e.g. http://127.0.0.1:8080 (or set SIDETRACE_INBOUND_ADDR=off)"))
		}
		if _, err := p.UpstreamURL(); err != nil {
			return varErr("SIDETRACE_UPSTREAM", err)
		}
	}
	switch p.UpstreamProtocol {
	case "auto", "http1", "h2c":
	default:
		return varErr("SIDETRACE_UPSTREAM_PROTOCOL", fmt.Errorf("%q is not auto, http1 or h2c", p.UpstreamProtocol))
	}
	if _, err := p.Routes(); err != nil {
		return varErr("SIDETRACE_EGRESS_ROUTES", err)
	}
	for _, v := range []struct{ name, val string }{
		{"OTEL_EXPORTER_OTLP_COMPRESSION", c.Telemetry.Compression},
		{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", c.Telemetry.TracesCompression},
	} {
		switch v.val {
		case "", "none", "gzip":
		default:
			return varErr(v.name, fmt.Errorf("%q is not gzip or none", v.val))
		}
	}
	if _, err := c.Telemetry.ExportTLS(); err != nil {
		return err
	}
	switch p.AccessLog {
	case "on", "off":
	default:
		return varErr("SIDETRACE_ACCESS_LOG", fmt.Errorf("%q is not on or off", p.AccessLog))
	}
	switch p.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return varErr("SIDETRACE_LOG_LEVEL", fmt.Errorf("%q is not debug, info, warn or error", p.LogLevel))
	}
	for _, d := range []struct {
		name string
		val  time.Duration
		zero bool
	}{
		{"SIDETRACE_DIAL_TIMEOUT", p.DialTimeout, false},
		{"SIDETRACE_UPSTREAM_TIMEOUT", p.UpstreamTimeout, false},
		{"SIDETRACE_READ_HEADER_TIMEOUT", p.ReadHeaderTimeout, false},
		{"SIDETRACE_IDLE_TIMEOUT", p.IdleTimeout, false},
		{"SIDETRACE_DRAIN_TIMEOUT", p.DrainTimeout, true},
		{"SIDETRACE_KEEP_SLOWER_THAN", c.Sampling.KeepSlowerThan, true},
		{"SIDETRACE_PLUGIN_TIMEOUT", c.Plugins.Timeout, false},
		{"SIDETRACE_PLUGIN_WATCH", c.Plugins.WatchEvery, true},
	} {
		if d.val < 0 || (d.val == 0 && !d.zero) {
			return varErr(d.name, fmt.Errorf("%v must be positive", d.val))
		}
	}
	t := &c.Telemetry
	for _, n := range []struct {
		name string
		val  int
		min  int
	}{
		{"SIDETRACE_MAX_IDLE_CONNS_PER_HOST", p.MaxIdleConns, 0},
		{"OTEL_EXPORTER_OTLP_TIMEOUT", t.TimeoutMillis, 1},
		{"OTEL_BSP_MAX_QUEUE_SIZE", t.QueueSize, 1},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", t.BatchSize, 1},
		{"OTEL_BSP_SCHEDULE_DELAY", t.ScheduleDelayMillis, 1},
		{"SIDETRACE_STORE_TRACES", t.StoreTraces, 1},
		{"SIDETRACE_PLUGIN_POOL_SIZE", c.Plugins.PoolSize, 0},
	} {
		if n.val < n.min {
			return varErr(n.name, fmt.Errorf("%d is below the minimum %d", n.val, n.min))
		}
	}
	if t.BatchSize > t.QueueSize {
		return varErr("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", fmt.Errorf("%d is larger than OTEL_BSP_MAX_QUEUE_SIZE (%d)", t.BatchSize, t.QueueSize))
	}
	for _, e := range []struct{ name, val string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", t.Endpoint},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", t.TracesEndpoint},
	} {
		if e.val == "" {
			continue
		}
		u, err := url.Parse(e.val)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return varErr(e.name, fmt.Errorf("%q is not an http:// or https:// URL", e.val))
		}
	}
	for _, h := range []struct{ name, val string }{
		{"OTEL_EXPORTER_OTLP_HEADERS", t.Headers},
		{"OTEL_EXPORTER_OTLP_TRACES_HEADERS", t.TracesHeaders},
		{"OTEL_RESOURCE_ATTRIBUTES", t.ResourceAttributes},
	} {
		if _, err := ParseKeyValues(h.val); err != nil {
			return varErr(h.name, err)
		}
	}
	if c.Plugins.JSON != "" && c.Plugins.File != "" {
		return varErr("SIDETRACE_PLUGINS_FILE", errors.New("set either SIDETRACE_PLUGINS or SIDETRACE_PLUGINS_FILE, not both"))
	}
	if c.Plugins.File != "" {
		if _, err := os.Stat(c.Plugins.File); err != nil {
			return varErr("SIDETRACE_PLUGINS_FILE", err)
		}
	}
	if c.Plugins.JSON != "" && !json.Valid([]byte(c.Plugins.JSON)) {
		return varErr("SIDETRACE_PLUGINS", errors.New("not valid JSON"))
	}
	return nil
}

// TracesURL is the OTLP/HTTP URL spans are exported to, or "" for the embedded store.
func (t Telemetry) TracesURL() string {
	if t.TracesEndpoint != "" {
		return t.TracesEndpoint
	}
	if t.Endpoint != "" {
		return strings.TrimSuffix(t.Endpoint, "/") + "/v1/traces"
	}
	return ""
}

// ExportGzip reports whether export requests are gzip-compressed (OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION).
func (t Telemetry) ExportGzip() bool {
	return firstSet(t.TracesCompression, t.Compression) == "gzip"
}

func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ExportTLS builds the TLS configuration of an https collector from the certificate variables: nil when none
// is set (the system's roots). Errors name the variable.
func (t Telemetry) ExportTLS() (*tls.Config, error) {
	caVar, ca := "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", t.TracesCertificate
	if ca == "" {
		caVar, ca = "OTEL_EXPORTER_OTLP_CERTIFICATE", t.Certificate
	}
	certVar, cert := "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", t.TracesClientCert
	if cert == "" {
		certVar, cert = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", t.ClientCertificate
	}
	keyVar, key := "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", t.TracesClientKey
	if key == "" {
		keyVar, key = "OTEL_EXPORTER_OTLP_CLIENT_KEY", t.ClientKey
	}
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, varErr(caVar, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, varErr(caVar, fmt.Errorf("%s holds no PEM certificate", ca))
		}
	}
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, varErr(certVar, fmt.Errorf("with %s: %w", keyVar, err))
		}
		cfg.Certificates = []tls.Certificate{pair}
	case cert != "":
		return nil, varErr(keyVar, fmt.Errorf("required with %s", certVar))
	case key != "":
		return nil, varErr(certVar, fmt.Errorf("required with %s", keyVar))
	}
	return cfg, nil
}

// ExportHeaders merges OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_TRACES_HEADERS.
func (t Telemetry) ExportHeaders() map[string]string {
	h, _ := ParseKeyValues(t.Headers)
	th, _ := ParseKeyValues(t.TracesHeaders)
	for k, v := range th {
		if h == nil {
			h = map[string]string{}
		}
		h[k] = v
	}
	return h
}

// ParseKeyValues parses the key1=value1,key2=value2 lists of the OpenTelemetry environment variables
// (values percent-encoded, as the W3C Baggage format they borrow).
func ParseKeyValues(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	m := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", strings.TrimSpace(part))
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", k, err)
		}
		m[k] = dv
	}
	return m, nil
}
