package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/propagators"
)

// fixedIDs makes both proxies of TestDirect_MatchesReverseProxy give the same ids, so that what they inject
// can be compared byte for byte.
type fixedIDs struct{}

func (fixedIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	return trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
}

func (fixedIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	return trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
}

// scriptedUpstream is an HTTP/1.1 upstream on loopback that records each request head as it arrived and
// answers with the raw response its path names (/case/NAME), so that both proxies meet the same bytes.
type scriptedUpstream struct {
	ln      net.Listener
	answers map[string]string
	mu      sync.Mutex
	heads   []string
	wg      sync.WaitGroup
}

func newScriptedUpstream(t *testing.T, answers map[string]string) *scriptedUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &scriptedUpstream{ln: ln, answers: answers}
	var conns sync.Map
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer conns.Delete(c)
				defer c.Close()
				u.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		u.wg.Wait()
	})
	return u
}

func (u *scriptedUpstream) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		var lines []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if l == "\r\n" {
				break
			}
			lines = append(lines, strings.TrimSuffix(l, "\r\n"))
		}
		n := 0
		for _, l := range lines[1:] {
			if k, v, _ := strings.Cut(l, ": "); strings.EqualFold(k, "Content-Length") {
				n, _ = strconv.Atoi(v)
			}
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		slices.Sort(lines[1:]) // the client writes fields in map order
		u.mu.Lock()
		u.heads = append(u.heads, strings.Join(lines, "\n")+"\n\n"+string(body))
		u.mu.Unlock()
		f := strings.Fields(lines[0])
		if len(f) != 3 {
			u.mu.Lock()
			u.heads = append(u.heads, "bad request line: "+lines[0])
			u.mu.Unlock()
			return
		}
		name := strings.TrimPrefix(f[1], "/case/")
		name, _, _ = strings.Cut(name, "?")
		answer := u.answers[name]
		if rest, ok := strings.CutPrefix(answer, "SLEEP "); ok {
			time.Sleep(time.Second)
			answer = rest
		}
		if answer == "" {
			return // close without a response
		}
		if rest, ok := strings.CutSuffix(answer, "CLOSE"); ok {
			c.Write([]byte(rest))
			return
		}
		if _, err := c.Write([]byte(answer)); err != nil {
			return
		}
	}
}

func (u *scriptedUpstream) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := u.heads
	u.heads = nil
	return h
}

// exchangeRaw sends a raw request on a new connection and describes what came back: each response's status
// line and sorted fields, the body, the trailers, how reading ended and whether the connection stayed open.
func exchangeRaw(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(req, " ")
	br := bufio.NewReader(c)
	var out strings.Builder
	for {
		res, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			fmt.Fprintf(&out, "no response: %v\n", err)
			return out.String()
		}
		fmt.Fprintf(&out, "%s %s\n", res.Proto, res.Status)
		out.WriteString(sortedFields(res.Header))
		fmt.Fprintf(&out, "content-length %d chunked %v close %v\n", res.ContentLength, res.TransferEncoding, res.Close)
		if res.StatusCode < 200 {
			continue
		}
		body, err := io.ReadAll(res.Body)
		fmt.Fprintf(&out, "body %q err %v\ntrailers:\n%s", body, err, sortedFields(res.Trailer))
		break
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := br.ReadByte(); err == io.EOF {
		out.WriteString("connection closed\n")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		out.WriteString("connection open\n")
	} else {
		fmt.Fprintf(&out, "after the response: %v\n", err)
	}
	return out.String()
}

func sortedFields(h http.Header) string {
	var lines []string
	for k, vv := range h {
		if k == "Date" {
			continue
		}
		for _, v := range vv {
			lines = append(lines, k+": "+v+"\n")
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "")
}

func describeSpans(spans tracetest.SpanStubs) string {
	var out strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&out, "%s %s parent %s status %v %q\n", s.Name, s.SpanKind, s.Parent.SpanID(), s.Status.Code, s.Status.Description)
		var attrs []string
		for _, kv := range s.Attributes {
			if kv.Key == "network.peer.port" {
				continue // the test client's port
			}
			attrs = append(attrs, fmt.Sprintf("  %s=%s\n", kv.Key, kv.Value.Emit()))
		}
		slices.Sort(attrs)
		out.WriteString(strings.Join(attrs, ""))
		for _, e := range s.Events {
			fmt.Fprintf(&out, "  event %s %v\n", e.Name, e.Attributes)
		}
		for _, l := range s.Links {
			fmt.Fprintf(&out, "  link %s %v\n", l.SpanContext.SpanID(), l.Attributes)
		}
	}
	return out.String()
}

// TestDirect_MatchesReverseProxy sends the same requests, met by the same upstream answers, through a proxy
// taking the direct path (forward.go) and through one sending everything through httputil.ReverseProxy, on
// the inbound hop and an egress route, and requires the same bytes at the upstream, the same responses at
// the client and the same spans.
func TestDirect_MatchesReverseProxy(t *testing.T) {
	const body1k = "0123456789abcdef"
	// Streamed answers name their Content-Type: without one, whether it is sniffed from the first bytes
	// depends on a race between them and ReverseProxy's flush timer (the direct path runs the same race).
	answers := map[string]string{
		"plain":      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nX-Up: 1\r\n\r\n" + body1k,
		"empty":      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"sniff":      "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</html>",
		"chunked":    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
		"trailer":    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n",
		"undeclared": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Late: 1\r\n\r\n",
		"nocontent":  "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n",
		"notmod":     "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n",
		"hops": "HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop, close\r\nX-Resp-Hop: secret\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authenticate: Basic\r\nUpgrade: foo\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nokCLOSE",
		"sse":      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\ndata: 1\n\ndata: 2\n\nCLOSE",
		"closedel": "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\nuntil the endCLOSE",
		"hints":    "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"fail":     "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
		"notfound": "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope",
		"short":    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly thisCLOSE",
		"switch":   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nCLOSE",
		"slow":     "SLEEP HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"gone":     "",
		"echo":     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"pragma":   "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok",
	}
	up := newScriptedUpstream(t, answers)
	target, _ := url.Parse("http://" + up.ln.Addr().String())

	type side struct {
		p        *Proxy
		exporter *tracetest.InMemoryExporter
		inbound  string
		route    string
	}
	start := func(direct bool) *side {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithIDGenerator(fixedIDs{}))
		t.Cleanup(func() { tp.Shutdown(context.Background()) })
		p := New(Options{
			Tracer:          tp.Tracer("test"),
			Propagator:      propagators.New(nil, propagators.InjectSpec{Formats: propagators.Set(propagators.TraceContext | propagators.B3 | propagators.Jaeger), Preserve: true}),
			UpstreamTimeout: 300 * time.Millisecond,
			TrustIncoming:   true,
			KeepErrors:      true,
		})
		p.noDirect = !direct
		s := &side{p: p, exporter: exp}
		for _, hop := range []struct {
			h    http.Handler
			addr *string
		}{{p.Inbound(target), &s.inbound}, {p.Route(target, nil), &s.route}} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := NewServer(hop.h, ServerOptions{})
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			*hop.addr = ln.Addr().String()
		}
		t.Cleanup(p.Close)
		return s
	}
	direct, viaRP := start(true), start(false)

	const cid = "X-Correlation-Id: test-1\r\n"
	tp := "Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
	requests := []struct {
		name, req string
		direct    bool // the direct path takes it
	}{
		{"plain", "GET /case/plain HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"query", "GET /case/plain?a=1&b=%20x&c HTTP/1.1\r\nHost: svc:8080\r\nUser-Agent: t/1\r\nAccept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\n" + cid + "\r\n", true},
		{"force query", "GET /case/plain? HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"escaped path", "GET /case/plain/a%2Fb/%7Ec HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"semicolon query", "GET /case/plain?a=1;b=2&c=%zz HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", false},
		{"hop by hop", "GET /case/plain HTTP/1.1\r\nHost: svc\r\nConnection: keep-alive, X-Hop, traceparent\r\nX-Hop: 1\r\n" +
			"Keep-Alive: timeout=5\r\nProxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\nTe: gzip, trailers\r\n" + tp + cid + "\r\n", true},
		{"te without trailers", "GET /case/plain HTTP/1.1\r\nHost: svc\r\nTE: gzip\r\n" + cid + "\r\n", true},
		{"forwarded", "GET /case/plain HTTP/1.1\r\nHost: svc\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n" +
			"Forwarded: for=1.2.3.4\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\n" + cid + "\r\n", true},
		{"formats", "GET /case/plain HTTP/1.1\r\nHost: svc\r\n" + tp + "Tracestate: k=v\r\nB3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1\r\n" +
			"Uber-Trace-Id: 1:2:0:1\r\nBaggage: a=b\r\n" + cid + "\r\n", true},
		{"generated id", "GET /case/plain HTTP/1.1\r\nHost: svc\r\n\r\n", true},
		{"post", "POST /case/echo HTTP/1.1\r\nHost: svc\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n" + cid + "\r\nhello world", true},
		{"post empty", "POST /case/echo HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n" + cid + "\r\n", true},
		{"chunked request", "POST /case/echo HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n" + cid + "\r\n5\r\nhello\r\n0\r\n\r\n", false},
		{"expect", "POST /case/echo HTTP/1.1\r\nHost: svc\r\nExpect: 100-continue\r\nContent-Length: 2\r\n" + cid + "\r\nhi", false},
		{"head", "HEAD /case/plain HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"other method", "PURGE /case/plain HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"http/1.0", "GET /case/plain HTTP/1.0\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"empty body", "GET /case/empty HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"sniffed type", "GET /case/sniff HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"chunked response", "GET /case/chunked HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"declared trailer", "GET /case/trailer HTTP/1.1\r\nHost: svc\r\nTE: trailers\r\n" + cid + "\r\n", true},
		{"undeclared trailer", "GET /case/undeclared HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"204", "GET /case/nocontent HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"304", "GET /case/notmod HTTP/1.1\r\nHost: svc\r\nIf-None-Match: \"x\"\r\n" + cid + "\r\n", true},
		{"response hops", "GET /case/hops HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"server-sent events", "GET /case/sse HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"close delimited", "GET /case/closedel HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"early hints", "GET /case/hints HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"500", "GET /case/fail HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"404", "GET /case/notfound HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"pragma and repeated fields", "GET /case/pragma HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"body cut short", "GET /case/short HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"unasked switch", "GET /case/switch HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"upstream timeout", "GET /case/slow HTTP/1.1\r\nHost: svc\r\n" + cid + "\r\n", true},
		{"upstream closes", "POST /case/gone HTTP/1.1\r\nHost: svc\r\nContent-Length: 1\r\n" + cid + "\r\nx", true},
		{"websocket", "GET /case/plain HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + cid + "\r\n", false},
	}
	uuid := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`)
	port := regexp.MustCompile(`127\.0\.0\.1:\d+->`)
	norm := func(s string) string {
		s = uuid.ReplaceAllString(s, "UUID")
		s = port.ReplaceAllString(s, "127.0.0.1:PORT->")
		return strings.ReplaceAll(s, up.ln.Addr().String(), "UPSTREAM")
	}
	run := func(s *side, addr, req string) (client, upstream, spans string, directs uint64) {
		before := s.p.directs.Load()
		client = exchangeRaw(t, addr, req)
		// The span ends after the response is written: wait for it.
		deadline := time.Now().Add(10 * time.Second)
		for len(s.exporter.GetSpans()) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		spans = describeSpans(s.exporter.GetSpans())
		s.exporter.Reset()
		upstream = strings.Join(up.take(), "\n----\n")
		return norm(client), norm(upstream), norm(spans), s.p.directs.Load() - before
	}
	for _, hop := range []string{"inbound", "route"} {
		for _, tc := range requests {
			t.Run(hop+"/"+tc.name, func(t *testing.T) {
				addr := func(s *side) string {
					if hop == "inbound" {
						return s.inbound
					}
					return s.route
				}
				c1, u1, s1, n1 := run(direct, addr(direct), tc.req)
				c2, u2, s2, n2 := run(viaRP, addr(viaRP), tc.req)
				if want := map[bool]uint64{true: 1, false: 0}[tc.direct]; n1 != want || n2 != 0 {
					t.Errorf("direct path taken %d times by the direct proxy (want %d), %d by the other (want 0)", n1, want, n2)
				}
				if c1 != c2 {
					t.Errorf("client got, direct:\n%s\nReverseProxy:\n%s", c1, c2)
				}
				if u1 != u2 {
					t.Errorf("upstream got, direct:\n%s\nReverseProxy:\n%s", u1, u2)
				}
				if s1 != s2 {
					t.Errorf("spans, direct:\n%s\nReverseProxy:\n%s", s1, s2)
				}
				if s1 == "" || c1 == "" {
					t.Errorf("nothing recorded: client %q spans %q", c1, s1)
				}
				if testing.Verbose() {
					t.Logf("client:\n%s\nupstream:\n%s\nspans:\n%s", c1, u1, s1)
				}
			})
		}
	}
	if st1, st2 := direct.p.stats.Inbound.Failed.Load(), viaRP.p.stats.Inbound.Failed.Load(); st1 != st2 || st1 == 0 {
		t.Errorf("inbound failures counted: direct %d, ReverseProxy %d; want equal and not zero", st1, st2)
	}
}

// gatedLog is an access log whose each line waits for a send on gate; it passes on the line's status.
type gatedLog struct {
	gate   chan struct{}
	status chan string
}

func (g *gatedLog) Enabled(context.Context, slog.Level) bool { return true }
func (g *gatedLog) Handle(_ context.Context, r slog.Record) error {
	<-g.gate
	status := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "status" {
			status = a.Value.String()
		}
		return true
	})
	g.status <- status
	return nil
}
func (g *gatedLog) WithAttrs([]slog.Attr) slog.Handler { return g }
func (g *gatedLog) WithGroup(string) slog.Handler      { return g }

// On the direct path the client has the whole response, trailers included, before the hop's work after it
// (the response plugins, the span's end with the span-end hooks, the access log): here the access log waits
// until the client has read the response.
func TestDirect_ClientHasTheResponseBeforeTheHopFinishes(t *testing.T) {
	up := newScriptedUpstream(t, map[string]string{
		"plain":   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"chunked": "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n",
	})
	target, _ := url.Parse("http://" + up.ln.Addr().String())
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	log := &gatedLog{gate: make(chan struct{}), status: make(chan string, 1)}
	p := New(Options{
		Tracer:     tp.Tracer("test"),
		Propagator: propagators.New(nil, propagators.InjectSpec{Formats: propagators.Set(propagators.TraceContext)}),
		AccessLog:  slog.New(log),
	})
	t.Cleanup(p.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(p.Inbound(target), ServerOptions{})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct{ name, want string }{
		{"plain", "body \"ok\" err <nil>\n"},
		{"chunked", "body \"hello\" err <nil>\ntrailers:\nX-Sum: 42\n"},
	} {
		got := exchangeRaw(t, ln.Addr().String(), "GET /case/"+tc.name+" HTTP/1.1\r\nHost: svc\r\nTE: trailers\r\n\r\n")
		log.gate <- struct{}{} // whatever came back: a failed exchange must not leave the handler waiting
		if !strings.Contains(got, tc.want) || !strings.HasSuffix(got, "connection open\n") {
			t.Errorf("%s: while the access log waited the client got\n%s; want %q and the connection open", tc.name, got, tc.want)
		}
		if status := <-log.status; status != "200" {
			t.Errorf("%s: access log status %q; want 200", tc.name, status)
		}
	}
	if n := p.directs.Load(); n != 2 {
		t.Errorf("%d requests took the direct path; want 2", n)
	}
	for _, s := range exp.GetSpans() {
		if s.Status.Code != codes.Unset {
			t.Errorf("span %q: status %v %q; want unset", s.Name, s.Status.Code, s.Status.Description)
		}
	}
	if n := len(exp.GetSpans()); n != 2 {
		t.Errorf("%d spans; want 2", n)
	}
}
