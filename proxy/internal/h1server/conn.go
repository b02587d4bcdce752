package h1server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sidetrace/sidetrace/proxy/internal/rawio"

	"github.com/sidetrace/sidetrace/proxy/internal/h1head"
)

// Connection states, for Shutdown: only an idle connection (or a new one silent for 5s) is closed under it.
const (
	stateNew int32 = iota
	stateActive
	stateIdle
	stateClosed
)

// bufSize is the read and write buffer of a connection; a request head must fit in it.
const bufSize = 4 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

var aLongTimeAgo = time.Unix(1, 0)

// conn is one client connection on the fast path.
type conn struct {
	s        *Server
	rwc      net.Conn
	io       net.Conn        // rwc's Read and Write without the scheduler's system-call hand-off (see rawio)
	ctx      context.Context // the connection's, parent of every request's
	remote   string
	accepted time.Time
	state    atomic.Int32
	served   bool

	br  *bufio.Reader
	bw  *bufio.Writer
	res response
	hdr http.Header // the request header map, cleared and reused
	val []string    // backing array of the header values, reused
	url url.URL     // the request's URL, reused as the header map is

	// The watch: a read started when a handler runs longer than WatchAfter, to notice the client leaving.
	wmu           sync.Mutex
	wstate        int    // 0 off, 1 armed, 2 reading
	armedTick     uint64 // the scanner's tick when armed
	listed        bool   // in the server's watched list
	wdone         chan struct{}
	wbyte         [1]byte
	whas          bool      // wbyte holds the first byte of a pipelined request
	lingerOnClose bool      // request bytes are left unread: half-close and drain before closing
	deadline      time.Time // the read deadline set, zero for none
	wgone         bool      // the read saw the client leave
	reqCancel     context.CancelFunc
	abortee       Deadliner    // set in the past when the request is cancelled (see response.AbortOnCancel)
	aborted       bool         // abortee's deadline was set
	tmpl          http.Request // the request being built (see serveRequest)
}

func (s *Server) newConn(c net.Conn, base context.Context) *conn {
	cc := &conn{s: s, rwc: c, io: rawio.Conn(c), remote: c.RemoteAddr().String(), accepted: time.Now(), hdr: make(http.Header)}
	// Not cancellable itself: each request's context is cancelled when its handler returns, which is before
	// the connection ends, and a child of a context without Done costs no lock and no map entry.
	cc.ctx = context.WithValue(base, http.LocalAddrContextKey, c.LocalAddr())
	if !s.track(cc, true) {
		return nil
	}
	return cc
}

// connReader reads the connection, first the byte a watch read.
type connReader struct{ c *conn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	if c.whas && len(p) > 0 {
		p[0] = c.wbyte[0]
		c.whas = false
		return 1, nil
	}
	return c.io.Read(p)
}

func (c *conn) serve() {
	handedOff := false
	defer func() {
		if !handedOff {
			if c.lingerOnClose {
				c.linger()
			}
			c.rwc.Close()
		}
		if c.br != nil {
			c.br.Reset(nil)
			readerPool.Put(c.br)
			c.bw.Reset(nil)
			writerPool.Put(c.bw)
		}
		c.s.track(c, false)
	}()
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(connReader{c})
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(c.io)

	for {
		// Wait for the next request: IdleTimeout between requests, ReadHeaderTimeout for the first.
		wait := c.s.ReadHeaderTimeout
		if c.served && c.s.IdleTimeout > 0 {
			wait = c.s.IdleTimeout
		}
		if wait > 0 && c.br.Buffered() == 0 {
			// A deadline set less than a second ago is kept: the wait is then up to a second shorter, and
			// a request costs no timer update.
			if want := time.Now().Add(wait); c.deadline.IsZero() || want.Sub(c.deadline) > time.Second {
				c.setReadDeadline(want)
			}
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) && !c.state.CompareAndSwap(stateNew, stateActive) {
			return // Shutdown closed it
		}
		n, ok := c.readHead()
		if !ok {
			return
		}
		if n < 0 {
			handedOff = true
			c.handOver()
			return
		}
		var r request
		head := string(c.peek(n))
		c.val = c.val[:0]
		clear(c.hdr)
		if c.val, ok = parseHead(head, &r, c.hdr, c.val, &c.url); !ok {
			handedOff = true
			c.handOver()
			return
		}
		c.br.Discard(n)
		if !c.deadline.IsZero() && r.contentLength > 0 {
			c.setReadDeadline(time.Time{}) // a body has no deadline, as with net/http's ReadTimeout 0
		}
		c.served = true
		keep := c.serveRequest(&r)
		if !keep || c.s.closing.Load() {
			return
		}
		if !c.state.CompareAndSwap(stateActive, stateIdle) {
			return
		}
	}
}

// linger half-closes the connection and reads what the client still sends for up to 500ms, so that closing
// with unread bytes does not reset the connection before the client has read the response (what net/http's
// closeWriteAndWait avoids with the same delay).
func (c *conn) linger() {
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = io.Copy(io.Discard, c.rwc)
}

func (c *conn) peek(n int) []byte {
	b, _ := c.br.Peek(n)
	return b
}

// readHead waits until a whole head is buffered and returns its length, or -1 to hand the connection over;
// false when the connection failed or the client went quiet past ReadHeaderTimeout.
func (c *conn) readHead() (int, bool) {
	for {
		buf := c.peek(c.br.Buffered())
		switch n := h1head.HeadEnd(buf); {
		case n != 0:
			return n, true
		case len(buf) >= bufSize:
			return -1, true // larger than the fast path takes: net/http allows up to 1 MB
		}
		// The rest of the head has ReadHeaderTimeout from now, or what is left of the wait when less.
		if t := c.s.ReadHeaderTimeout; t > 0 {
			if want := time.Now().Add(t); c.deadline.IsZero() || want.Before(c.deadline) {
				c.setReadDeadline(want)
			}
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			return 0, false
		}
	}
}

// setReadDeadline sets the connection's read deadline and remembers it.
func (c *conn) setReadDeadline(t time.Time) {
	c.deadline = t
	c.rwc.SetReadDeadline(t)
}

func (c *conn) handOver() {
	pending := append([]byte(nil), c.peek(c.br.Buffered())...)
	c.setReadDeadline(time.Time{})
	c.s.track(c, false)
	c.s.handOver(&replayConn{Conn: c.rwc, pending: pending})
}

// serveRequest runs the handler for one request and reports whether the connection can serve another.
func (c *conn) serveRequest(pr *request) (keep bool) {
	ctx, cancel := context.WithCancel(c.ctx)
	var body io.ReadCloser = http.NoBody
	var b *bodyReader
	if pr.contentLength > 0 {
		b = &bodyReader{c: c, remaining: pr.contentLength}
		body = b
	}
	// The request is built in the connection's template and copied by WithContext: one allocation.
	c.tmpl = http.Request{
		Method:        pr.method,
		URL:           pr.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        c.hdr,
		Body:          body,
		ContentLength: pr.contentLength,
		Close:         pr.close,
		Host:          pr.host,
		RemoteAddr:    c.remote,
		RequestURI:    pr.target,
	}
	req := c.tmpl.WithContext(ctx)
	w := &c.res
	w.reset(c, req)
	w.closeAfter = pr.close

	c.wmu.Lock()
	c.reqCancel = cancel
	c.wgone = false
	c.wmu.Unlock()
	if b == nil {
		c.armWatch()
	}

	defer func() {
		if rec := recover(); rec != nil {
			if rec != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.Logger.Error("http: panic serving "+c.remote, "panic", rec, "stack", string(buf))
			}
			keep = false
		}
		c.stopWatch()
		if c.wgone {
			keep = false
		}
		cancel()
	}()
	c.s.Handler.ServeHTTP(w, req)
	w.finish()
	if b != nil && !b.finish() {
		// The body was not read to its end and could not be discarded: the next request's bytes are not
		// where they should be. Closing with unread bytes would send a reset that can destroy the response
		// on its way, so the close is graceful.
		w.closeAfter = true
		c.lingerOnClose = true
	}
	return !w.closeAfter && w.err == nil // and the watch did not see the client leave: see the deferred call
}

// armWatch asks the server's scanner to watch the connection once the handler has run for WatchAfter: a
// read then notices the client leaving. Nothing is armed while request bytes are buffered: a pipelined
// request is already there. A per-request timer would cost more than the whole watch saves.
func (c *conn) armWatch() {
	c.wmu.Lock()
	armed := c.wstate == 0 && c.br.Buffered() == 0 && !c.whas
	list := false
	if armed {
		c.wstate = 1
		c.armedTick = c.s.tick.Load()
		list, c.listed = !c.listed, true
	}
	c.wmu.Unlock()
	if armed {
		c.s.armed(c, list)
	}
}

// startWatch starts the watch read; c.wmu is held.
func (c *conn) startWatch() {
	c.wstate = 2
	done := make(chan struct{})
	c.wdone = done
	// The wait's deadline must not end the watch; cleared under the lock, so stopWatch's comes after it.
	c.setReadDeadline(time.Time{})
	go c.watch(done)
}

// watch reads one byte, which is either the start of the next request or the end of the connection.
func (c *conn) watch(done chan struct{}) {
	defer close(done)
	n, err := c.io.Read(c.wbyte[:])
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if n == 1 {
		c.whas = true
		return
	}
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		c.wgone = true // EOF or reset: the client is gone
		c.cancelRequestLocked()
	}
}

// cancelRequestLocked cancels the request's context and aborts what the handler asked to (AbortOnCancel).
// c.wmu is held.
func (c *conn) cancelRequestLocked() {
	if c.reqCancel != nil {
		c.reqCancel()
	}
	if c.abortee != nil && !c.aborted {
		_ = c.abortee.SetDeadline(aLongTimeAgo)
		c.aborted = true
	}
}

// stopWatch ends the watch after the handler; a read in progress is interrupted.
func (c *conn) stopWatch() {
	c.wmu.Lock()
	state, done := c.wstate, c.wdone
	c.wstate, c.wdone, c.reqCancel = 0, nil, nil
	c.abortee, c.aborted = nil, false
	c.wmu.Unlock()
	if state == 2 {
		c.rwc.SetReadDeadline(aLongTimeAgo)
		<-done
		c.setReadDeadline(time.Time{})
	}
}

// bodyReader reads a request body of known length from the connection's buffer.
type bodyReader struct {
	c         *conn
	mu        sync.Mutex
	remaining int64
	closed    bool
	err       error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.err != nil:
		return 0, b.err
	case b.remaining == 0:
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.c.br.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 {
		b.c.armWatch()
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return n, err
}

func (b *bodyReader) Close() error {
	return nil // as net/http: the rest of the body is dealt with after the handler
}

// maxDiscard is how much of a body the handler left unread is read and dropped to keep the connection
// (net/http's maxPostHandlerReadBytes).
const maxDiscard = 256 << 10

// finish closes the body after the handler and reports whether the connection can serve another request:
// the body was read to its end, or what is left of it (up to maxDiscard) was read and dropped now. A read
// still in progress elsewhere (a transport writing the body upstream) means no.
func (b *bodyReader) finish() bool {
	if !b.mu.TryLock() {
		return false
	}
	defer b.mu.Unlock()
	b.closed = true
	if b.err != nil || b.remaining > maxDiscard {
		return false
	}
	if b.remaining == 0 {
		return true
	}
	c := b.c
	if t := c.s.ReadHeaderTimeout; t > 0 {
		c.setReadDeadline(time.Now().Add(t))
		defer c.setReadDeadline(time.Time{})
	}
	n, err := io.CopyN(io.Discard, c.br, b.remaining)
	b.remaining -= n
	return err == nil
}
