package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is a minimal HTTP/2 client with prior knowledge (h2c, RFC 9113 §3.3) for one connection and one
// request at a time: it writes a HEADERS frame whose header block was encoded once (every field a literal
// never indexed, so the same bytes are valid on every stream) and reads frames until its stream ends,
// discarding the body. net/http's HTTP/2 client costs several times as much per request (a read goroutine
// per connection, a stream per request handed between goroutines); at 5000 requests/s with the
// interleaved baseline, the generator then fell behind on the CPU it shares with the upstream. It
// answers SETTINGS and PING, keeps the connection's receive window open, and treats RST_STREAM and a
// GOAWAY that excludes its stream as errors; the next call after any error dials a new connection.
type h2Conn struct {
	addr    string
	block   []byte // the request's header block
	timeout time.Duration

	conn       net.Conn
	bw         *bufio.Writer
	fr         *http2.Framer
	stream     uint32 // the last stream id used
	unacked    uint32 // DATA bytes received since the last connection WINDOW_UPDATE
	goneAway   bool   // the server sent GOAWAY: no new stream on this connection
	deadlineAt time.Time
}

// h2Window is the receive window sidetrace-bench advertises for each stream (SETTINGS_INITIAL_WINDOW_SIZE)
// and adds to the connection's at the start; the connection's is topped up once this much is consumed.
const h2Window = 1 << 30

func newH2Conn(u *url.URL, headers []string, timeout time.Duration) *h2Conn {
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	field := func(name, value string) {
		_ = enc.WriteField(hpack.HeaderField{Name: name, Value: value, Sensitive: true})
	}
	field(":method", "GET")
	field(":scheme", "http")
	field(":authority", u.Host)
	field(":path", u.RequestURI())
	field("user-agent", "sidetrace-bench")
	for _, h := range headers {
		if name, value, ok := strings.Cut(h, ":"); ok {
			field(strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value))
		}
	}
	return &h2Conn{addr: addr, block: block.Bytes(), timeout: timeout}
}

// do sends the request on a new stream and reads the whole response.
func (c *h2Conn) do() (status int, err error) {
	if c.conn == nil || c.goneAway || c.stream >= 1<<31-2 {
		c.close()
		if err := c.dial(); err != nil {
			return 0, err
		}
	}
	if now := time.Now(); now.Sub(c.deadlineAt) > time.Second { // as h1Conn: a timer update per second
		c.conn.SetDeadline(now.Add(c.timeout))
		c.deadlineAt = now
	}
	status, err = c.roundTrip()
	if err != nil {
		c.close()
	}
	return status, err
}

func (c *h2Conn) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(c.timeout))
	c.conn, c.stream, c.unacked, c.goneAway, c.deadlineAt = conn, 0, 0, false, time.Time{}
	c.bw = bufio.NewWriterSize(conn, 4<<10)
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(conn, 16<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.SetReuseFrames()
	if _, err := io.WriteString(c.bw, http2.ClientPreface); err != nil {
		return err
	}
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2Window},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0}); err != nil {
		return err
	}
	if err := c.fr.WriteWindowUpdate(0, h2Window); err != nil {
		return err
	}
	return c.bw.Flush()
}

func (c *h2Conn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

var errStreamReset = errors.New("h2c: stream reset by the server")

func (c *h2Conn) roundTrip() (status int, err error) {
	if c.stream == 0 {
		c.stream = 1
	} else {
		c.stream += 2
	}
	id := c.stream
	if c.unacked >= h2Window/2 {
		if err := c.fr.WriteWindowUpdate(0, c.unacked); err != nil {
			return 0, err
		}
		c.unacked = 0
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block, EndStream: true, EndHeaders: true}); err != nil {
		return 0, err
	}
	if err := c.bw.Flush(); err != nil {
		return 0, err
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return status, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := c.reply(c.fr.WriteSettingsAck()); err != nil {
					return status, err
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := c.reply(c.fr.WritePing(true, f.Data)); err != nil {
					return status, err
				}
			}
		case *http2.GoAwayFrame:
			c.goneAway = true
			if f.LastStreamID < id {
				return status, fmt.Errorf("h2c: GOAWAY (%v) before stream %d", f.ErrCode, id)
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return status, fmt.Errorf("%w: %v", errStreamReset, f.ErrCode)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				continue
			}
			if s := f.PseudoValue("status"); s != "" && (status == 0 || status < 200) {
				if status, err = strconv.Atoi(s); err != nil {
					return 0, errMalformed
				}
			}
			if f.StreamEnded() {
				return status, nil
			}
		case *http2.DataFrame:
			c.unacked += f.Header().Length // flow control counts padding too
			if f.StreamID == id && f.StreamEnded() {
				if status == 0 {
					return 0, errMalformed
				}
				return status, nil
			}
		}
	}
}

// reply writes a control frame's answer at once.
func (c *h2Conn) reply(err error) error {
	if err != nil {
		return err
	}
	return c.bw.Flush()
}
