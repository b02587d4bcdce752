package proxy

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http/httpguts"
)

// The direct path forwards the common exchange without httputil.ReverseProxy: an HTTP/1.x request without
// Upgrade, Expect or a chunked body, to an http:// target without a path prefix, over the synchronous
// HTTP/1.1 client (h1client.go). It does, step for step, what ReverseProxy with this hop's Rewrite,
// ModifyResponse and ErrorHandler does, with none of its per-request copies: the request is not cloned (the
// header map of a request read by sidetrace's own server becomes the upstream request's; net/http's get a
// pooled copy sharing the values), the upstream response's header map is handed to the writer, and no client
// trace or context is added for 1xx responses or cancellation. TestDirect_MatchesReverseProxy sends the same requests and
// upstream answers through both paths and compares the bytes the upstream and the client get, and the spans.
// Everything else (gRPC, h2c upstreams, WebSocket and other upgrades, 100-continue, chunked or large request
// bodies, the forward proxy, targets with a path or query) goes through ReverseProxy.

// directTarget reports whether a hop's target allows the direct path.
func directTarget(t *url.URL, protocol string) bool {
	return t != nil && t.Scheme == "http" && (t.Path == "" || t.Path == "/") && t.RawPath == "" &&
		t.RawQuery == "" && !t.ForceQuery && t.Opaque == "" && protocol != "h2c" && !reencodesQueries
}

// reencodesQueries: with GODEBUG urlmaxqueryparams set, ReverseProxy re-encodes every query.
var reencodesQueries = strings.Contains(os.Getenv("GODEBUG"), "urlmaxqueryparams")

// directEligible reports whether r can take the direct path.
func directEligible(r *http.Request) bool {
	if r.ProtoMajor != 1 || len(r.TransferEncoding) > 0 || r.Trailer != nil {
		return false
	}
	if r.ContentLength < 0 || r.ContentLength > maxFastBody {
		return false
	}
	u := r.URL
	if u.Host != "" || u.Opaque != "" || u.Scheme != "" || !strings.HasPrefix(u.Path, "/") || !cleanQuery(u.RawQuery) {
		return false
	}
	return !upgradeOrExpect(r.Header)
}

// cleanQuery reports whether ReverseProxy would send the query as it is (see its cleanQueryParams): no ';',
// every '%' followed by two hex digits, at most 10,000 parameters.
func cleanQuery(q string) bool {
	if strings.Count(q, "&") >= 10000 {
		return false
	}
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
			i += 3
		default:
			i++
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hopHeaders are removed in both directions, as ReverseProxy removes them (RFC 9110 §7.6.1 and the older
// list RFC 2616 §13.5.1 gave), with the fields the Connection header names.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// headerPool recycles the outgoing header maps of the direct path.
var headerPool = sync.Pool{New: func() any { return make(http.Header, 16) }}

var teTrailers = []string{"trailers"}

// noCloseBody keeps the client's request body open when the upstream client closes the outgoing one, as
// ReverseProxy does.
type noCloseBody struct{ io.ReadCloser }

func (noCloseBody) Close() error { return nil }

// sendDirect sends in to the target and writes the upstream's response to x.rw.
func (h *hop) sendDirect(ctx context.Context, in *http.Request, x *exchange) {
	h.p.directs.Add(1)
	w := x.rw
	// With sidetrace's own server, the request's header map, which nothing reads after this, becomes the
	// upstream request's; net/http's server reads its own after the handler (HTTP/1.0 keep-alive), so its
	// requests get a pooled copy.
	own, _ := w.ResponseWriter.(ownServer)
	out := h.outgoing(in, x, own != nil)
	var ab aborter
	if own != nil {
		ab = own
	}
	res, err := h.p.transport.fast.do(ctx, out, x, ab, &x.resp)
	if own == nil {
		clear(out.Header)
		headerPool.Put(out.Header)
	}
	out.Header = nil
	if err != nil {
		if isHeaderTimeout(err) {
			err = &upstreamTimeoutError{err: err, timeout: h.p.transport.timeout}
		}
		h.upstreamFailed(ctx, w, x, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Nothing was offered to switch to (an Upgrade request goes through ReverseProxy), which refuses it.
		h.responseArrived(res, x)
		_ = res.Body.Close()
		if up := upgradeType(res.Header); !isPrint(up) {
			err = fmt.Errorf("backend tried to switch to invalid protocol %q", up)
		} else {
			err = fmt.Errorf("backend tried to switch protocol %q when %q was requested", up, "")
		}
		h.upstreamFailed(ctx, w, x, err)
		return
	}
	removeHopHeaders(res.Header)
	h.responseArrived(res, x)
	announced := len(res.Trailer)
	// Without trailers (which would be added to it), the response's header map is sent as it is rather than
	// copied into the writer's.
	if own == nil || announced > 0 || !own.UseHeader(res.Header) {
		copyHeader(w.Header(), res.Header)
	}
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		w.Header().Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)
	if err := h.copyBody(w, res); err != nil {
		defer res.Body.Close()
		panic(http.ErrAbortHandler) // the response is half sent: all that is left is to abort it
	}
	_ = res.Body.Close()
	if len(res.Trailer) > 0 {
		w.Flush() // chunked, so that the trailers can follow
	}
	if len(res.Trailer) == announced {
		copyHeader(w.Header(), res.Trailer)
	} else {
		for k, vv := range res.Trailer {
			k = http.TrailerPrefix + k
			for _, v := range vv {
				w.Header().Add(k, v)
			}
		}
	}
	if own != nil {
		// The client gets the end of the response now rather than after the response plugins, the span's end
		// and the access log, which are not its concern (nor is its leaving theirs: see End).
		_ = own.End()
	}
}

// ownServer is the response writer of sidetrace's own HTTP/1.1 server (internal/h1server).
type ownServer interface {
	aborter
	// UseHeader makes h the response's header map when nothing was set in Header's yet.
	UseHeader(h http.Header) bool
	// End sends the rest of the response before the handler returns; later writes fail.
	End() error
}

// outgoing builds the upstream request in x.out: what ReverseProxy's Clone, hop-by-hop removal and this
// hop's Rewrite produce. With inPlace, in's header map becomes the upstream request's; otherwise a pooled
// one is filled.
func (h *hop) outgoing(in *http.Request, x *exchange, inPlace bool) *http.Request {
	// Read before the removals below, which may edit in.Header itself.
	te := httpguts.HeaderValuesContainsToken(in.Header["Te"], "trailers")
	prior := in.Header["X-Forwarded-For"]
	hdr := in.Header
	if !inPlace {
		hdr = headerPool.Get().(http.Header)
		for k, vv := range in.Header {
			hdr[k] = vv[:len(vv):len(vv)] // shared; an append copies
		}
	}
	removeHopHeaders(hdr)
	for _, k := range forwardedHeaders {
		delete(hdr, k)
	}
	if te {
		hdr["Te"] = teTrailers[:1:1]
	}

	x.outURL = url.URL{Scheme: h.target.Scheme, Host: h.target.Host, Path: in.URL.Path, RawPath: in.URL.RawPath,
		RawQuery: in.URL.RawQuery, ForceQuery: in.URL.ForceQuery, Fragment: in.URL.Fragment, RawFragment: in.URL.RawFragment}
	x.out = http.Request{
		Method: in.Method, URL: &x.outURL, Proto: in.Proto, ProtoMajor: in.ProtoMajor, ProtoMinor: in.ProtoMinor,
		Header: hdr, ContentLength: in.ContentLength, RemoteAddr: in.RemoteAddr,
	}
	if in.ContentLength > 0 && in.Body != nil && in.Body != http.NoBody {
		x.body = noCloseBody{in.Body}
		x.out.Body = &x.body
	}

	if h.kind == trace.SpanKindServer {
		x.out.Host = in.Host // as rewrite: the service sees the Host the client sent
		// SetXForwarded, after rewrite put back the client's X-Forwarded-For.
		if clientIP, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
			if len(prior) > 0 {
				clientIP = strings.Join(prior, ", ") + ", " + clientIP
			}
			hdr["X-Forwarded-For"] = x.field(0, clientIP)
		}
		hdr["X-Forwarded-Host"] = x.field(1, in.Host)
		if in.TLS == nil {
			hdr["X-Forwarded-Proto"] = x.field(2, "http")
		} else {
			hdr["X-Forwarded-Proto"] = x.field(2, "https")
		}
	}
	h.prop.Inject(hdr, x.span.SpanContext(), &x.extracted)
	hdr[CorrelationHeader] = x.field(3, x.correlation)
	return &x.out
}

// forwardedHeaders are the client's forwarding fields, which a Rewrite ReverseProxy drops before Rewrite.
var forwardedHeaders = [...]string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// field returns a one-value slice for a header field, stored in x (an append copies it).
func (x *exchange) field(i int, v string) []string {
	x.fields[i] = v
	return x.fields[i : i+1 : i+1]
}

// copyBody copies the response body as ReverseProxy does with FlushInterval 0: at once for a body of known
// length, flushing after every write for server-sent events and bodies of unknown length.
func (h *hop) copyBody(w *responseWriter, res *http.Response) error {
	flush := res.ContentLength == -1
	if !flush {
		if ct := res.Header["Content-Type"]; len(ct) > 0 && maybeEventStream(ct[0]) {
			base, _, _ := mime.ParseMediaType(ct[0])
			flush = base == "text/event-stream"
		}
	}
	var dst io.Writer = w
	if flush {
		fw := &flushingWriter{w: w, pending: true}
		// As ReverseProxy: the head goes out at once unless the body's first bytes beat the timer to it, in
		// which case they are sniffed for a Content-Type.
		fw.t = time.AfterFunc(0, fw.delayedFlush)
		defer fw.stop()
		dst = fw
	}
	bp := h.p.buffers.get()
	defer h.p.buffers.put(bp)
	buf := *bp
	for {
		nr, rerr := res.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			h.rp.ErrorLog.Printf("httputil: ReverseProxy read error during body copy: %v", rerr)
		}
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nr != nw {
				return io.ErrShortWrite
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}

// maybeEventStream is a cheap first look at a Content-Type, before mime.ParseMediaType (which allocates)
// confirms: the media type, cased any way, before any parameter.
func maybeEventStream(ct string) bool {
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// flushingWriter flushes after every write, and once from a timer so that the head is not held back by a
// slow body: ReverseProxy's maxLatencyWriter with a negative latency.
type flushingWriter struct {
	w       *responseWriter
	mu      sync.Mutex
	t       *time.Timer
	pending bool
}

func (f *flushingWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.w.Write(p)
	f.w.Flush()
	return n, err
}

func (f *flushingWriter) delayedFlush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending {
		f.w.Flush()
		f.pending = false
	}
}

func (f *flushingWriter) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = false
	f.t.Stop()
}

// removeHopHeaders removes the hop-by-hop fields of a request or a response, as ReverseProxy does.
func removeHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		delete(h, f)
	}
}

// copyHeader adds the fields of src to dst, as ReverseProxy does; a field dst lacks takes src's values
// without a copy (src is not used after).
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if _, ok := dst[k]; !ok && len(vv) > 0 && k == http.CanonicalHeaderKey(k) {
			dst[k] = vv[:len(vv):len(vv)]
			continue
		}
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// got1xx passes an informational response on to the client, as ReverseProxy does.
func (x *exchange) got1xx(code int, header http.Header) error {
	wh := x.rw.Header()
	copyHeader(wh, header)
	x.rw.WriteHeader(code)
	clear(wh) // a 1xx response's fields are not the final response's
	return nil
}

func isPrint(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// upgradeType is the protocol an Upgrade field asks for, when the Connection field names it.
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return headerValue(h, "Upgrade")
}

// headerValue is h.Get(k) for a k already in canonical form, which Get would canonicalize again per call. Both
// servers and both clients store canonical keys.
func headerValue(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}
