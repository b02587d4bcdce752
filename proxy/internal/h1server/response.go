package h1server

import (
	"bufio"
	"errors"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/sidetrace/sidetrace/proxy/internal/h1head"
)

// smallBody is how much of a body of undeclared length is held back: when the handler ends within it, the
// response gets a Content-Length instead of chunks (net/http holds 2 KiB back for the same reason).
const smallBody = 2 << 10

// response is the http.ResponseWriter of the fast path, reused per connection. It writes what net/http's
// writer would: the same framing decisions, a Date, a sniffed Content-Type when none was set, Connection:
// close when the connection ends after it, and trailers (declared in Trailer or prefixed with
// http.TrailerPrefix) after a chunked body. One difference: net/http copies the header at WriteHeader, this
// writer sends the head with the first body byte (or at the end of a small body), so a field changed in
// between is sent; which fields are trailers is decided at WriteHeader, as net/http decides it.
type response struct {
	c           *conn
	req         *http.Request
	header      http.Header
	own         http.Header // the connection's header map, reused; header unless UseHeader
	status      int
	wroteHead   bool
	cl          int64 // the declared Content-Length, -1 when none
	written     int64
	chunked     bool
	isHead      bool
	done        bool
	closeAfter  bool
	held        []byte   // body held back before the head is written (see smallBody)
	trailers    []string // declared trailer keys
	hasTrailers bool     // declared or prefixed trailers at WriteHeader
	err         error
}

func (w *response) reset(c *conn, req *http.Request) {
	if w.own == nil {
		w.own = make(http.Header)
		w.held = make([]byte, 0, smallBody)
	}
	clear(w.own)
	*w = response{c: c, req: req, header: w.own, own: w.own, held: w.held[:0], trailers: w.trailers[:0], cl: -1,
		isHead: req.Method == http.MethodHead}
}

// Header returns the header map sent with WriteHeader.
func (w *response) Header() http.Header { return w.header }

// UseHeader makes h the response's header map, in place of the connection's, when the head is not written
// yet and nothing was set in Header's: a proxy hands over its upstream's response header instead of copying
// it. h is written to as Header's map would be (Transfer-Encoding is removed at WriteHeader). It reports
// whether h was taken.
func (w *response) UseHeader(h http.Header) bool {
	if w.wroteHead || len(w.header) != 0 || h == nil {
		return false
	}
	w.header = h
	return true
}

// WriteHeader sends an informational status (1xx but 101) at once; a final one is recorded and sent with the
// first body bytes, a Flush, or the end of the handler.
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if w.status != 0 {
		return // superfluous, as net/http ignores it
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		if w.err != nil {
			return
		}
		bw := w.c.bw
		writeStatusLine(bw, code)
		for k, vs := range w.header {
			writeField(bw, k, vs)
		}
		bw.WriteString("\r\n")
		w.setErr(bw.Flush())
		return
	}
	w.status = code
	// What is a trailer is decided now, as net/http decides it on its copy of the header made here: declared
	// ones (Trailer) are left out of the head, prefixed ones set later are dropped unless the body is chunked.
	for _, v := range w.header["Trailer"] {
		for v != "" {
			var k string
			k, v, _ = strings.Cut(v, ",")
			k = textproto.CanonicalMIMEHeaderKey(h1head.TrimOWS(k))
			switch k {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
			default:
				w.trailers = append(w.trailers, k)
			}
		}
	}
	w.hasTrailers = len(w.trailers) > 0
	for k := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.hasTrailers = true
			break
		}
	}
	if v := w.header["Content-Length"]; len(v) > 0 {
		if n, ok := h1head.ParseContentLength(strings.TrimSpace(v[0])); ok {
			w.cl = n
		} else {
			delete(w.header, "Content-Length") // as net/http, which logs it
		}
	}
}

func (w *response) bodyAllowed() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified && w.status >= 200
}

// Write sends body bytes.
func (w *response) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, ErrEnded
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.cl >= 0 && w.written > w.cl {
		return 0, http.ErrContentLength
	}
	if !w.wroteHead {
		if w.cl < 0 && len(w.held)+len(p) <= smallBody {
			w.held = append(w.held, p...)
			return len(p), nil
		}
		w.writeHead(p)
	}
	if w.isHead {
		return len(p), nil
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// WriteString avoids a copy for io.WriteString.
func (w *response) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Flush sends the head and what is buffered.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush with its error, for http.ResponseController.
func (w *response) FlushError() error {
	if w.err != nil || w.done {
		return w.err
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.wroteHead {
		w.writeHead(nil)
	}
	w.setErr(w.c.bw.Flush())
	return w.err
}

// End ends the response before the handler returns, as the handler's return would: the head if not yet
// written, the last chunk and the trailers of a chunked body, and a flush. The client has the whole response
// when it returns, while the handler goes on with work that is not the client's (a proxy's span and access
// log). From then on the client's leaving no longer cancels the request's context or aborts what
// AbortOnCancel was given, writes fail with ErrEnded, and the handler's return writes nothing more. It
// returns the connection's write error, if any.
func (w *response) End() error {
	c := w.c
	c.wmu.Lock()
	c.reqCancel, c.abortee = nil, nil
	c.wmu.Unlock()
	w.finish()
	return w.err
}

// ErrEnded is returned by writes after End.
var ErrEnded = errors.New("h1server: write after the response ended")

// finish ends the response after the handler, unless End did.
func (w *response) finish() {
	if w.done {
		return
	}
	w.done = true
	if w.err != nil {
		return
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.wroteHead {
		w.writeHead(nil)
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		for _, k := range w.trailers {
			if vs := w.header[k]; len(vs) > 0 {
				writeField(bw, k, vs)
			}
		}
		for k, vs := range w.header {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				writeField(bw, k[len(http.TrailerPrefix):], vs)
			}
		}
		bw.WriteString("\r\n")
	}
	if w.cl >= 0 && w.written != w.cl && !w.isHead && w.bodyAllowed() {
		w.closeAfter = true // the body is short of its Content-Length: the client must see the end
	}
	w.setErr(bw.Flush())
}

// writeHead writes the status line and fields, choosing the framing; first is the body's first bytes when
// known (for sniffing a Content-Type), held bytes go out after the head.
func (w *response) writeHead(first []byte) {
	w.wroteHead = true
	h := w.header
	bw := w.c.bw
	held := w.held
	if len(held) > 0 {
		first = held
	}
	if w.c.s.closing.Load() {
		w.closeAfter = true
	}

	hasTrailers := w.hasTrailers
	writeStatusLine(bw, w.status)
	allowed := w.bodyAllowed()
	delete(h, "Transfer-Encoding") // the framing is decided here
	switch {
	case w.cl >= 0:
	case !allowed:
	case w.done && !hasTrailers && (!w.isHead || len(held) > 0):
		w.cl = int64(len(held))
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(len(held)))
		bw.WriteString("\r\n")
	case w.isHead:
	default:
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(w.c.s.httpDate())
		bw.WriteString("\r\n")
	}
	if _, ok := h["Content-Type"]; !ok && allowed && len(first) > 0 {
		bw.WriteString("Content-Type: ")
		bw.WriteString(http.DetectContentType(first))
		bw.WriteString("\r\n")
	}
	if w.closeAfter && !httpguts.HeaderValuesContainsToken(h["Connection"], "close") {
		bw.WriteString("Connection: close\r\n")
	}
	for k, vs := range h {
		if !strings.HasPrefix(k, http.TrailerPrefix) && !w.isTrailer(k) {
			writeField(bw, k, vs)
		}
	}
	bw.WriteString("\r\n")
	if len(held) > 0 && !w.isHead {
		w.writeBody(held)
	}
	w.held = held[:0]
}

func (w *response) isTrailer(k string) bool {
	for _, t := range w.trailers {
		if t == k {
			return true
		}
	}
	return false
}

func (w *response) writeBody(p []byte) {
	if len(p) == 0 {
		return
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		w.setErr(err)
		return
	}
	_, err := bw.Write(p)
	w.setErr(err)
}

// setErr records a write error: the request's context is cancelled (the client is gone, as net/http
// decides) and the connection ends after the handler.
func (w *response) setErr(err error) {
	if err == nil || w.err != nil {
		return
	}
	w.err = err
	w.closeAfter = true
	w.c.wmu.Lock()
	w.c.cancelRequestLocked()
	w.c.wmu.Unlock()
}

// Deadliner is what AbortOnCancel aborts: a connection, say.
type Deadliner interface {
	SetDeadline(t time.Time) error
}

// AbortOnCancel arranges for d's deadline to be set in the past when the request's context is cancelled
// while the handler runs (the client left, or a write to it failed), which unblocks d's reads and writes:
// what context.AfterFunc(r.Context(), ...) would do, without its allocations. One d at a time; ClearAbort
// ends it. It reports false, doing nothing, when the context is already cancelled.
func (w *response) AbortOnCancel(d Deadliner) bool {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if w.req.Context().Err() != nil {
		return false
	}
	c.abortee, c.aborted = d, false
	return true
}

// ClearAbort ends AbortOnCancel and reports whether it did so before the deadline was set, as the stop
// function of context.AfterFunc does.
func (w *response) ClearAbort() bool {
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	stopped := !c.aborted
	c.abortee, c.aborted = nil, false
	return stopped
}

var statusLines [600]string

func init() {
	for code := 100; code < len(statusLines); code++ {
		if text := http.StatusText(code); text != "" {
			statusLines[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
}

func writeStatusLine(bw *bufio.Writer, code int) {
	if code < len(statusLines) && statusLines[code] != "" {
		bw.WriteString(statusLines[code])
		return
	}
	bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " status code " + strconv.Itoa(code) + "\r\n")
}

// writeField writes one field line per value, dropping what net/http drops (an invalid name) and turning
// CR and LF in values into spaces, as net/http does, so a handler cannot split the response.
func writeField(bw *bufio.Writer, k string, vs []string) {
	if !httpguts.ValidHeaderFieldName(k) {
		return
	}
	for _, v := range vs {
		if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 {
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		}
		bw.WriteString(k)
		bw.WriteString(": ")
		bw.WriteString(strings.TrimSpace(v))
		bw.WriteString("\r\n")
	}
}

// httpDate returns the Date field's value, formatted once a second.
func (s *Server) httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.sec == sec {
		return d.val
	}
	d := &cachedDate{sec: sec, val: now.UTC().Format(http.TimeFormat)}
	s.date.Store(d)
	return d.val
}

type cachedDate struct {
	sec int64
	val string
}
