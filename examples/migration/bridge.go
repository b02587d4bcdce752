package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/contrib/propagators/jaeger"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/config"
	"github.com/sidetrace/sidetrace/internal/sidecar"
)

// format is one trace-context format as a legacy application speaks it: through the reference propagator
// (OpenTelemetry-Go or its contrib package), never through sidetrace's code.
type format struct {
	name     string // the OTEL_PROPAGATORS / SIDETRACE_INJECT name
	title    string // for messages
	prop     propagation.TextMapPropagator
	required []string // headers that must arrive for the format to carry a context
}

var (
	b3Multi = format{"b3multi", "B3 (multi-header)", b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader)),
		[]string{"X-B3-TraceId", "X-B3-SpanId"}}
	w3c         = format{"tracecontext", "W3C Trace Context", propagation.TraceContext{}, []string{"traceparent"}}
	jaegerTrace = format{"jaeger", "Jaeger", jaeger.Jaeger{}, []string{"uber-trace-id"}}
)

// chain is the fleet, entry first: each service calls the next one (through its sidecar) on callPath.
var chain = []struct {
	name     string
	format   format
	callPath string // path of the call to the next service; "" for the last one
}{
	{"orders", b3Multi, "/pay"},
	{"payments", w3c, "/record"},
	{"ledger", jaegerTrace, ""},
}

// betweenSidecars is the format sidecars write on the calls between services (the per-route inject=
// override). Every sidecar reads every format (OTEL_PROPAGATORS' default), so any would do; W3C is the
// standard one, and it keeps each service's own format on the last hop to that service only.
const betweenSidecars = "tracecontext"

// Options configure a Bridge.
type Options struct {
	// EntryAddr is the listen address of orders' sidecar inbound hop, where clients enter; "" = 127.0.0.1:0.
	EntryAddr string
	// OTLPEndpoint is the OTLP/HTTP base URL the three sidecars export to; "" = each keeps its spans in its
	// embedded store, served at /debug/traces on its admin address.
	OTLPEndpoint string
	// Env is appended to every sidecar's environment (later entries win), e.g. OTEL_BSP_SCHEDULE_DELAY=20.
	Env []string
	// Stdout and Stderr receive the sidecars' access logs and own logs, each line prefixed with the sidecar's
	// name; nil = io.Discard.
	Stdout, Stderr io.Writer
	// OnRequest, when set, is called with what each service received, before it checks it.
	OnRequest func(Visit)
}

// Visit is one request a service received: its headers and the context its own propagator extracted.
type Visit struct {
	Service string
	Header  http.Header
	Context trace.SpanContext
}

// Bridge is the running fleet: three services, each behind its own sidecar.
type Bridge struct {
	Services []*Service // entry first
	Sidecars []*Sidecar // Sidecars[i] is in front of Services[i]

	once    sync.Once
	stopErr error
}

// Sidecar is one running sidetrace and the environment it was started with.
type Sidecar struct {
	*sidecar.Sidecar
	Name string
	Env  []string
}

// Start starts the fleet on loopback, the last service first so each sidecar's egress route can point at the
// next sidecar's inbound hop. On error everything already started is stopped.
func Start(ctx context.Context, o Options) (_ *Bridge, err error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	b := &Bridge{}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = b.Shutdown(sctx)
		}
	}()
	next := "" // inbound hop of the next service's sidecar
	var out, errw sync.Mutex
	for i := len(chain) - 1; i >= 0; i-- {
		c := chain[i]
		svc, err := newService(c.name, c.format, c.callPath, o.OnRequest)
		if err != nil {
			return nil, err
		}
		listen := "127.0.0.1:0"
		if i == 0 && o.EntryAddr != "" {
			listen = o.EntryAddr
		}
		env := SidecarEnv(c.name, c.format.name, listen, svc.URL(), routeListen, next)
		if o.OTLPEndpoint != "" {
			env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+o.OTLPEndpoint)
		}
		env = append(env, o.Env...)
		sc, err := startSidecar(ctx, c.name, env,
			&prefixWriter{mu: &out, w: o.Stdout, prefix: "[" + c.name + " sidecar] "},
			&prefixWriter{mu: &errw, w: o.Stderr, prefix: "[" + c.name + " sidecar] "})
		if err != nil {
			svc.close(ctx)
			return nil, err
		}
		b.Services = append([]*Service{svc}, b.Services...)
		b.Sidecars = append([]*Sidecar{sc}, b.Sidecars...)
		if c.callPath != "" {
			route, ok := routeAddr(sc.Addrs())
			if !ok {
				return nil, fmt.Errorf("%s sidecar: no egress route listener in %v", c.name, sc.Addrs())
			}
			svc.next = "http://" + route + c.callPath
		}
		svc.serve() // only now: the service knows where its calls go
		next = "http://" + sc.Addrs()["inbound"]
	}
	return b, nil
}

// routeAddr finds the bound address of the sidecar's one egress route (listed as "route ADDR").
func routeAddr(addrs map[string]string) (string, bool) {
	for name, addr := range addrs {
		if strings.HasPrefix(name, "route ") {
			return addr, true
		}
	}
	return "", false
}

// routeListen is the egress route's listen address: the kernel picks the port, Addrs reports it.
const routeListen = "127.0.0.1:0"

// SidecarEnv is the environment of the sidecar in front of service, the part to copy into a deployment:
// the inbound hop writes only the service's own format (so it never sees one it does not read), and the
// egress route, the service's fixed target for its calls, leads to the next service's sidecar.
func SidecarEnv(service, format, inbound, upstream, route, nextInbound string) []string {
	env := []string{
		"OTEL_SERVICE_NAME=" + service,
		"SIDETRACE_INBOUND_ADDR=" + inbound,
		"SIDETRACE_UPSTREAM=" + upstream,
		"SIDETRACE_INJECT=" + format,
		"SIDETRACE_EGRESS_ADDR=off", // the services call fixed routes, not a forward proxy
		"SIDETRACE_ADMIN_ADDR=127.0.0.1:0",
	}
	if nextInbound != "" {
		env = append(env, "SIDETRACE_EGRESS_ROUTES="+route+"="+nextInbound+";inject="+betweenSidecars)
	}
	return env
}

func startSidecar(ctx context.Context, name string, env []string, stdout, stderr io.Writer) (*Sidecar, error) {
	cfg, err := config.Load(env)
	if err != nil {
		return nil, fmt.Errorf("%s sidecar: %w", name, err)
	}
	s, err := sidecar.Start(ctx, cfg, sidecar.Options{Stdout: stdout, Stderr: stderr})
	if err != nil {
		return nil, fmt.Errorf("%s sidecar: %w", name, err)
	}
	return &Sidecar{Sidecar: s, Name: name, Env: env}, nil
}

// EntryURL is where clients call orders: its sidecar's inbound hop.
func (b *Bridge) EntryURL() string { return "http://" + b.Sidecars[0].Addrs()["inbound"] }

// Shutdown stops the fleet from the entry inwards, so requests in flight finish their whole chain: each
// sidecar drains (and flushes its spans), then its service. Later calls return the first one's result.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.once.Do(func() {
		var errs []error
		for i, svc := range b.Services {
			if err := b.Sidecars[i].Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s sidecar: %w", b.Sidecars[i].Name, err))
			}
			if err := svc.close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", svc.Name, err))
			}
		}
		b.stopErr = errors.Join(errs...)
	})
	return b.stopErr
}

// Service is a legacy instrumented application: it reads the trace context of the requests it serves in its
// one format, and writes the same context in the same format on the call it makes to the next service, as its
// old instrumentation library would. It has no idea sidetrace exists; it only calls a fixed address, which is
// its sidecar's egress route.
type Service struct {
	Name    string
	format  format
	next    string // URL of the call to the next service, through the sidecar's egress route; "" = none
	client  *http.Client
	visit   func(Visit)
	srv     *http.Server
	ln      net.Listener
	serving bool
}

func newService(name string, f format, callPath string, visit func(Visit)) (*Service, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &Service{Name: name, format: f, visit: visit, ln: ln,
		// No Proxy (not even HTTP_PROXY from the environment): the egress route is the service's only target.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// URL is the service's own address, which only its sidecar calls.
func (s *Service) URL() string { return "http://" + s.ln.Addr().String() }

func (s *Service) serve() {
	s.serving = true
	go s.srv.Serve(s.ln)
}

func (s *Service) close(ctx context.Context) error {
	var err error
	if s.serving {
		err = s.srv.Shutdown(ctx)
	} else {
		s.ln.Close()
	}
	s.client.CloseIdleConnections()
	return err
}

// ServeHTTP checks the request carries the service's own format, calls the next service with the same
// context, and answers one line per service of what each read.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := s.format.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	sc := trace.SpanContextFromContext(ctx)
	if s.visit != nil {
		s.visit(Visit{Service: s.Name, Header: r.Header.Clone(), Context: sc})
	}
	if problem := s.check(r.Header, sc); problem != "" {
		http.Error(w, problem, http.StatusInternalServerError)
		return
	}
	line := fmt.Sprintf("%-8s read %-12s trace=%s parent=%s sampled=%v\n", s.Name, s.format.name, sc.TraceID(), sc.SpanID(), sc.IsSampled())
	if s.next == "" {
		io.WriteString(w, line)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.next, nil)
	if err != nil {
		http.Error(w, s.Name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.format.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	res, err := s.client.Do(req)
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: call %s: %v", s.Name, s.next, err), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		http.Error(w, fmt.Sprintf("%s: call %s: %v", s.Name, s.next, err), http.StatusBadGateway)
		return
	}
	if res.StatusCode != http.StatusOK {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "%s: call %s: %s\n%s", s.Name, s.next, res.Status, body)
		return
	}
	io.WriteString(w, line)
	w.Write(body)
}

// check names what is missing when the request does not carry a context in the service's format.
func (s *Service) check(h http.Header, sc trace.SpanContext) string {
	var missing []string
	for _, k := range s.format.required {
		if h.Get(k) == "" {
			missing = append(missing, k)
		}
	}
	switch {
	case len(missing) > 0:
		return fmt.Sprintf("%s reads only %s: the request has no %s header", s.Name, s.format.title, strings.Join(missing, ", "))
	case !sc.IsValid():
		return fmt.Sprintf("%s reads only %s: %s present but not a valid context", s.Name, s.format.title, strings.Join(s.format.required, ", "))
	}
	return ""
}

// prefixWriter prefixes each write (one log line: slog writes a record at once) with a name, serialised with
// the other sidecars' writers on the same output.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}
