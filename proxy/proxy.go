// Package proxy is sidetrace's reverse proxy: the inbound hop (traffic to the local service, one SERVER span
// per request), the egress forward proxy and fixed egress routes (calls the service makes, one CLIENT span per
// request, CONNECT tunnelled with a span of its own).
//
// It builds on net/http/httputil.ReverseProxy with Rewrite, so injected headers survive hop-by-hop stripping,
// and one ErrorHandler that decides the status for upstream failures (502 unreachable, 504 timeout) and records
// the error on the span. The common exchange (HTTP/1.x without Upgrade, Expect or a chunked body, to an http://
// target without a path prefix) takes a direct path instead (forward.go), which does what ReverseProxy does
// without its per-request copies and is tested against it byte for byte. The listeners serve the common
// HTTP/1.1 request with a server of their own
// (internal/h1server) and hand every other connection to net/http's (h2c, upgrades, chunked bodies, the
// forward proxy's absolute-form requests). Upstream HTTP/1.1 exchanges without a body or with a small one go
// through a synchronous client of its own (h1client.go; responses parsed by http.ReadResponse), the rest
// through http.Transport (HTTP/1.1 and h2c). Both own paths read and write their sockets with raw
// non-blocking system calls (internal/rawio). Spans follow the OpenTelemetry HTTP semantic conventions
// (https://opentelemetry.io/docs/specs/semconv/http/http-spans/) and, for gRPC, the RPC ones
// (https://opentelemetry.io/docs/specs/semconv/rpc/grpc/).
package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/plugins"
	"github.com/sidetrace/sidetrace/propagators"
	"github.com/sidetrace/sidetrace/proxy/internal/h1server"
)

// Options configures a Proxy.
type Options struct {
	Tracer     trace.Tracer
	Propagator *propagators.Propagator
	Plugins    *plugins.Host // nil = no plugins
	AccessLog  *slog.Logger  // one line per request; nil = off
	Logger     *slog.Logger  // sidetrace's own log

	DialTimeout         time.Duration
	UpstreamTimeout     time.Duration // time for an upstream's response headers (504 beyond)
	MaxIdleConnsPerHost int
	UpstreamProtocol    string // "auto", "http1" or "h2c"

	TrustIncoming  bool          // use the incoming context as parent (else: new trace, linked)
	KeepErrors     bool          // export an unsampled hop's span when it failed
	KeepSlowerThan time.Duration // export an unsampled hop's span slower than this (0 = off)
}

// Proxy holds what every hop shares: the tracer, the propagator and the upstream connection pools.
type Proxy struct {
	opts      Options
	transport *transport
	buffers   bufferPool
	attrs     attrPool
	stats     Stats

	// hardStop ends hijacked connections (WebSocket, CONNECT) that outlive a drain.
	hardStop   context.Context
	cancelHard context.CancelFunc
	tunnels    sync.WaitGroup

	noDirect bool          // tests: every request through httputil.ReverseProxy
	directs  atomic.Uint64 // requests that took the direct path, for tests
}

// Stats counts requests per hop kind.
type Stats struct {
	Inbound, Egress HopStats
}

// HopStats are one hop kind's counters.
type HopStats struct {
	Requests atomic.Uint64 // requests handled
	Failed   atomic.Uint64 // requests answered by sidetrace with 502, 503 or 504
	InFlight atomic.Int64
}

// New returns a Proxy.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 30 * time.Second
	}
	if opts.UpstreamProtocol == "" {
		opts.UpstreamProtocol = "auto"
	}
	p := &Proxy{opts: opts, transport: newTransport(opts)}
	p.hardStop, p.cancelHard = context.WithCancel(context.Background())
	return p
}

// Stats returns the live counters.
func (p *Proxy) Stats() *Stats { return &p.stats }

// Close ends hijacked connections still open (WebSocket, CONNECT tunnels), waits for them, and closes idle
// upstream connections. Call it after the servers' Shutdown.
func (p *Proxy) Close() {
	p.cancelHard()
	p.tunnels.Wait()
	p.transport.closeIdle()
}

// Inbound returns the handler of the inbound hop: it forwards every request to upstream with a SERVER span.
func (p *Proxy) Inbound(upstream *url.URL) http.Handler {
	return p.newHop(trace.SpanKindServer, upstream, p.opts.Propagator, &p.stats.Inbound)
}

// Egress returns the handler of the egress forward proxy: requests in absolute form (HTTP_PROXY) are forwarded
// to their URL, CONNECT is tunnelled; every request gets a CLIENT span whose parent is the application's context.
func (p *Proxy) Egress() http.Handler {
	return p.newHop(trace.SpanKindClient, nil, p.opts.Propagator, &p.stats.Egress)
}

// Route returns the handler of a fixed egress listener forwarding to upstream with CLIENT spans; prop
// overrides the injected formats for this route (nil = the proxy's).
func (p *Proxy) Route(upstream *url.URL, prop *propagators.Propagator) http.Handler {
	if prop == nil {
		prop = p.opts.Propagator
	}
	return p.newHop(trace.SpanKindClient, upstream, prop, &p.stats.Egress)
}

// ServerOptions configures NewServer.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	Logger            *slog.Logger
}

// Server serves one hop's listener: HTTP/1.1 and cleartext HTTP/2 with prior knowledge on the same port.
type Server struct{ s h1server.Server }

// NewServer returns a Server for a hop handler. The common HTTP/1.1 request (origin form, no body or one of
// known length, no Upgrade or Expect) is parsed and answered by sidetrace's own HTTP/1.1 server
// (proxy/internal/h1server), which costs a fraction of net/http's per request; every other connection (h2c,
// WebSocket and other upgrades, chunked request bodies, absolute-form targets of the egress forward proxy,
// anything malformed) is handed with its bytes to a net/http Server. The h2c Upgrade mechanism is not
// offered: RFC 9113 §3.1 deprecates it, and an "Upgrade: h2c" request is served as HTTP/1.1.
func NewServer(h http.Handler, opts ServerOptions) *Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	fallback := &http.Server{
		Handler:           h,
		Protocols:         &protos,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
	}
	if opts.Logger != nil {
		fallback.ErrorLog = slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug)
	}
	return &Server{s: h1server.Server{
		Handler:           h,
		Fallback:          fallback,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		Logger:            opts.Logger,
	}}
}

// Serve accepts connections on ln until Shutdown or Close; it returns http.ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error { return s.s.Serve(ln) }

// Shutdown stops accepting, closes idle connections and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.s.Shutdown(ctx) }

// Close closes the listeners and every connection.
func (s *Server) Close() error { return s.s.Close() }

func splitHostPort(hostport, scheme string) (string, int) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
		port = ""
	}
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			n = 0
			break
		}
		n = n*10 + int(c-'0')
	}
	if port == "" {
		switch scheme {
		case "https":
			n = 443
		default:
			n = 80
		}
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, n
}
