package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/sidetrace/sidetrace/proxy/internal/h1server"
	"github.com/sidetrace/sidetrace/proxy/internal/rawio"
)

// maxFastBody is the largest request body (of known length) the synchronous client sends: it writes the
// whole body before reading the response, which is safe as long as the body fits the socket buffers even
// when the upstream answers before reading it.
const maxFastBody = 64 << 10

// h1Client is a synchronous HTTP/1.1 client for the common exchange: a request without a body, or with a
// small body of known length, to an http:// upstream, no Upgrade, no "Expect: 100-continue", no trailers.
// http.Transport runs two goroutines per connection and hands every request and response between them over
// channels; on one core those switches, and their allocations, cost a fifth of a proxied request. Here the
// handler's goroutine writes the request and reads the response head itself, on a pooled keep-alive
// connection; whoever reads Response.Body to its end puts the connection back. The response is parsed by
// http.ReadResponse, so framing (Content-Length, chunked, trailers, close-delimited, HEAD, 204/304) is
// net/http's own. Every other request goes to http.Transport.
type h1Client struct {
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle       int
	idleTimeout   time.Duration
	headerTimeout time.Duration

	mu        sync.Mutex
	idle      map[string][]*h1Conn // by host:port, most recently used last
	lastSweep time.Time
	closed    bool
}

// sweepEvery is how often release looks for idle connections past their timeout under every host, so
// that an egress proxy talking to many hosts does not keep connections to hosts it no longer calls.
const sweepEvery = 10 * time.Second

type h1Conn struct {
	c      net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	addr   string
	idleAt time.Time
	reused bool
	// deadline is the read deadline set for a response head, kept between exchanges while no body has been
	// read from the connection itself (zero: none set).
	deadline time.Time
}

// headDeadline sets the read deadline for a response head, timeout from now. One set less than timeout/32
// ago (at most a second) is kept: the wait is then up to that much shorter, and an exchange on a busy
// connection costs no timer update (two per exchange, with the clearing after the head, were half a
// percent of the CPU at 5000 requests/s).
func (pc *h1Conn) headDeadline(timeout time.Duration) {
	want := time.Now().Add(timeout)
	if pc.deadline.IsZero() || want.Sub(pc.deadline) > min(timeout/32, time.Second) {
		pc.deadline = want
		_ = pc.c.SetReadDeadline(want)
	}
}

// bodyDeadline clears the head's deadline unless the body is already buffered (or there is none): a body
// read from the connection has no deadline, since streams may run any length.
func (pc *h1Conn) bodyDeadline(res *http.Response) {
	if pc.deadline.IsZero() || res.Body == http.NoBody {
		return
	}
	if b, ok := res.Body.(*lengthBody); ok && b.remaining <= int64(pc.br.Buffered()) {
		return
	}
	pc.deadline = time.Time{}
	_ = pc.c.SetReadDeadline(time.Time{})
}

func newH1Client(dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int, idleTimeout, headerTimeout time.Duration) *h1Client {
	return &h1Client{dial: dial, maxIdle: maxIdle, idleTimeout: idleTimeout, headerTimeout: headerTimeout, idle: make(map[string][]*h1Conn)}
}

// eligible reports whether r is an exchange h1Client handles; ReverseProxy has already removed hop-by-hop
// headers, so an Upgrade header left means an upgrade request.
func (c *h1Client) eligible(r *http.Request) bool {
	if r.URL.Scheme != "http" || r.Trailer != nil || len(r.TransferEncoding) > 0 {
		return false
	}
	if r.Body != nil && r.Body != http.NoBody && (r.ContentLength <= 0 || r.ContentLength > maxFastBody) {
		return false
	}
	return !upgradeOrExpect(r.Header)
}

// upgradeOrExpect reports whether h asks for a protocol upgrade or an interim response (Expect), which the
// synchronous client and the direct path leave to net/http.
func upgradeOrExpect(h http.Header) bool {
	_, up := h["Upgrade"]
	_, expect := h["Expect"]
	return up || expect
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength > 0
}

// RoundTrip sends r on an idle connection, or a new one. A reused connection that turns out to be closed by
// the upstream before any byte of the response is retried once on a new connection when the request has no
// body and is idempotent, as http.Transport does; a request that cannot be retried first checks that the idle
// connection is still open.
func (c *h1Client) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	var info informer
	if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
		info = traceInformer(trace.Got1xxResponse)
	}
	return c.do(ctx, r, info, nil, nil)
}

// informer is told of each informational response but 100 Continue.
type informer interface {
	got1xx(code int, h http.Header) error
}

type traceInformer func(int, textproto.MIMEHeader) error

func (f traceInformer) got1xx(code int, h http.Header) error { return f(code, textproto.MIMEHeader(h)) }

// do is RoundTrip with the context given apart from the request (r.Context() is not consulted) and info told
// of informational responses (nil: they are skipped). ab, when not nil, is the response writer of the
// server request whose context ctx derives from: it unblocks the exchange when that request is cancelled,
// in place of context.AfterFunc. st, when not nil, is where a common response is built (readResponseFast).
func (c *h1Client) do(ctx context.Context, r *http.Request, info informer, ab aborter, st *responseStore) (*http.Response, error) {
	addr := canonicalAddr(r)
	retryable := !hasBody(r) && isIdempotent(r)
	for attempt := 0; ; attempt++ {
		pc, err := c.get(ctx, addr, !retryable || attempt > 0)
		if err != nil {
			closeBody(r)
			return nil, err
		}
		res, err := c.exchange(ctx, r, pc, info, ab, st)
		if err == nil {
			return res, nil
		}
		pc.c.Close()
		var nothing *nothingReadError
		if errors.As(err, &nothing) {
			if pc.reused && retryable && attempt == 0 && ctx.Err() == nil {
				continue
			}
			err = nothing.err
		}
		closeBody(r)
		return nil, err
	}
}

// nothingReadError is a failure before the first byte of a response: on a reused connection, the upstream
// most likely closed it while idle.
type nothingReadError struct{ err error }

func (e *nothingReadError) Error() string { return e.err.Error() }
func (e *nothingReadError) Unwrap() error { return e.err }

// aLongTimeAgo is a deadline in the past: setting it unblocks a pending read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

func (c *h1Client) exchange(ctx context.Context, r *http.Request, pc *h1Conn, info informer, ab aborter, st *responseStore) (*http.Response, error) {
	var w cancelWatch
	switch {
	case ab != nil:
		if !ab.AbortOnCancel(pc.c) {
			return nil, ctx.Err() // cancelled already
		}
		w.ab = ab
	case ctx.Done() != nil:
		w.stop = context.AfterFunc(ctx, func() { _ = pc.c.SetDeadline(aLongTimeAgo) })
	}
	fail := func(err error) (*http.Response, error) {
		w.end()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := writeRequest(pc.bw, r); err != nil {
		var werr *writeError
		if errors.As(err, &werr) {
			return fail(&nothingReadError{err})
		}
		return fail(err)
	}
	if hasBody(r) {
		_ = r.Body.Close()
	}
	if c.headerTimeout > 0 {
		pc.headDeadline(c.headerTimeout)
	}
	var res *http.Response
	for {
		if _, err := pc.br.Peek(1); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return fail(err) // the upstream is slow, not gone: no retry
			}
			return fail(&nothingReadError{err})
		}
		var ok bool
		if res, ok = readResponseFast(pc.br, r, st); !ok {
			var err error
			if res, err = http.ReadResponse(pc.br, r); err != nil {
				return fail(err)
			}
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// An informational response (103 Early Hints, say): ReverseProxy passes it on through the trace hook.
		if info != nil && res.StatusCode != http.StatusContinue {
			if err := info.got1xx(res.StatusCode, res.Header); err != nil {
				return fail(err)
			}
		}
	}
	pc.bodyDeadline(res)
	reuse := !res.Close && !r.Close
	if res.Body == http.NoBody {
		c.release(pc, w.end() && reuse)
		return res, nil
	}
	var b *h1Body
	if st != nil {
		b = &st.wrap
	} else {
		b = new(h1Body)
	}
	*b = h1Body{rc: res.Body, pc: pc, client: c, watch: w, reuse: reuse}
	res.Body = b
	return res, nil
}

// aborter is a server's cheaper context.AfterFunc for the request being served: h1server's response
// writer sets the deadline of what it is given in the past when the client leaves.
type aborter interface {
	AbortOnCancel(d h1server.Deadliner) bool
	ClearAbort() bool
}

// cancelWatch unblocks an exchange's connection when its context is cancelled, through the server's
// aborter or context.AfterFunc.
type cancelWatch struct {
	ab   aborter
	stop func() bool
}

// end ends the watch and reports whether it had not fired (the connection's deadline is intact).
func (w cancelWatch) end() bool {
	switch {
	case w.ab != nil:
		return w.ab.ClearAbort()
	case w.stop != nil:
		return w.stop()
	}
	return true
}

// writeError is a failure to write the request: nothing of a response was read.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write request: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// writeRequest writes r in origin form. Header fields are checked as http.Transport checks them.
func writeRequest(w *bufio.Writer, r *http.Request) error {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("http: invalid Host header %q", host)
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("net/http: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("net/http: invalid header field value for %q", k)
			}
		}
	}
	w.WriteString(r.Method)
	w.WriteByte(' ')
	w.WriteString(r.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vv := range r.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer", "Connection":
			continue
		case "User-Agent":
			if len(vv) == 0 || vv[0] == "" {
				continue // ReverseProxy's way of saying: send none
			}
		}
		for _, v := range vv {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if r.Close {
		w.WriteString("Connection: close\r\n")
	}
	n := int64(0)
	if hasBody(r) {
		n = r.ContentLength
	}
	if n > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(n, 10))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	if n > 0 {
		m, err := io.CopyN(w, r.Body, n)
		if err != nil {
			if err == io.EOF {
				return fmt.Errorf("http: ContentLength=%d with Body length %d", n, m)
			}
			return fmt.Errorf("read request body: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return &writeError{err}
	}
	return nil
}

// h1Body is a response body on a pooled connection: read to its end, it returns the connection to the pool;
// closed before, it closes the connection.
type h1Body struct {
	rc     io.ReadCloser
	pc     *h1Conn
	client *h1Client
	watch  cancelWatch
	reuse  bool
	done   bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.done = true
		b.client.release(b.pc, b.watch.end() && b.reuse)
	} else if err != nil {
		b.done = true
		b.watch.end()
		b.pc.c.Close()
	}
	return n, err
}

func (b *h1Body) Close() error {
	if !b.done {
		b.done = true
		b.watch.end()
		b.pc.c.Close()
	}
	return nil
}

func (c *h1Client) release(pc *h1Conn, reuse bool) {
	// Bytes already read past the end of the response are not the answer to any request we sent: a
	// connection with them cannot be reused (http.Transport calls it an unsolicited response).
	if reuse && pc.br.Buffered() == 0 {
		now := time.Now()
		pc.idleAt = now
		pc.reused = true
		c.mu.Lock()
		var expired []*h1Conn
		if c.idleTimeout > 0 && now.Sub(c.lastSweep) > sweepEvery {
			expired = c.sweepLocked(now)
		}
		if !c.closed && len(c.idle[pc.addr]) < c.maxIdle {
			c.idle[pc.addr] = append(c.idle[pc.addr], pc)
			pc = nil
		}
		c.mu.Unlock()
		for _, e := range expired {
			e.c.Close()
		}
		if pc == nil {
			return
		}
	}
	pc.c.Close()
}

// sweepLocked removes the idle connections past the idle timeout, and hosts left with none; the caller
// closes them outside the lock.
func (c *h1Client) sweepLocked(now time.Time) []*h1Conn {
	c.lastSweep = now
	var expired []*h1Conn
	for addr, list := range c.idle {
		keep := list[:0]
		for _, pc := range list {
			if now.Sub(pc.idleAt) > c.idleTimeout {
				expired = append(expired, pc)
			} else {
				keep = append(keep, pc)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(c.idle, addr)
		} else {
			c.idle[addr] = keep
		}
	}
	return expired
}

// get returns the most recently used idle connection to addr that has not timed out, or a new one. With
// check, an idle connection is first checked for a close by the upstream.
func (c *h1Client) get(ctx context.Context, addr string, check bool) (*h1Conn, error) {
	now := time.Now()
	c.mu.Lock()
	for {
		list := c.idle[addr]
		if len(list) == 0 {
			break
		}
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		// An emptied list stays, so that release appends to it without allocating; the sweep removes the
		// hosts left with none.
		c.idle[addr] = list[:len(list)-1]
		if c.idleTimeout > 0 && now.Sub(pc.idleAt) > c.idleTimeout {
			pc.c.Close()
			continue
		}
		c.mu.Unlock()
		if check && !connAlive(pc.c) {
			pc.c.Close()
			c.mu.Lock()
			continue
		}
		return pc, nil
	}
	c.mu.Unlock()
	conn, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	rw := rawio.Conn(conn) // reads and writes without the scheduler's system-call hand-off (see rawio)
	return &h1Conn{c: conn, br: bufio.NewReaderSize(rw, 4<<10), bw: bufio.NewWriterSize(rw, 4<<10), addr: addr}, nil
}

// closeIdle closes the idle connections; with stop, the client keeps none from now on.
func (c *h1Client) closeIdle(stop bool) {
	c.mu.Lock()
	idle := c.idle
	c.idle = make(map[string][]*h1Conn)
	if stop {
		c.closed = true
	}
	c.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			pc.c.Close()
		}
	}
}

func canonicalAddr(r *http.Request) string {
	if r.URL.Port() != "" {
		return r.URL.Host
	}
	return net.JoinHostPort(r.URL.Hostname(), "80")
}

func isIdempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := r.Header["Idempotency-Key"]
	_, b := r.Header["X-Idempotency-Key"]
	return a || b
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}
