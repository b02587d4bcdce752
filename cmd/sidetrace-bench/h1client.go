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
	"time"
)

// h1Conn is a minimal HTTP/1.1 keep-alive client for one connection: it writes a request prepared once
// and reads the response with a bufio.Reader, discarding the body. It costs a fraction of what
// net/http's client does per request, which keeps the load generator off the critical path when it
// shares a CPU with the upstream. It understands Content-Length, chunked bodies and Connection: close,
// which is all an upstream or proxy answering GETs needs.
type h1Conn struct {
	addr    string
	req     []byte
	timeout time.Duration

	conn       net.Conn
	br         *bufio.Reader
	deadlineAt time.Time // when the connection deadline was last pushed forward
}

func newH1Conn(u *url.URL, headers []string, timeout time.Duration) *h1Conn {
	host := u.Host
	addr := host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sidetrace-bench\r\n", u.RequestURI(), host)
	for _, h := range headers {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return &h1Conn{addr: addr, req: b.Bytes(), timeout: timeout}
}

// do sends the request and reads the whole response. On any error the connection is closed and the
// next call dials a new one.
func (c *h1Conn) do() (status int, err error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return 0, err
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.br.Reset(conn)
		}
		c.deadlineAt = time.Time{}
	}
	// Pushing the deadline forward on every request would cost a timer update each time; once a
	// second is enough to bound a hung request to between timeout-1s and timeout.
	if now := time.Now(); now.Sub(c.deadlineAt) > time.Second {
		c.conn.SetDeadline(now.Add(c.timeout))
		c.deadlineAt = now
	}
	status, keep, err := c.roundTrip()
	if err != nil || !keep {
		c.close()
	}
	return status, err
}

func (c *h1Conn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

var errMalformed = errors.New("malformed HTTP response")

func (c *h1Conn) roundTrip() (status int, keepAlive bool, err error) {
	if _, err := c.conn.Write(c.req); err != nil {
		return 0, false, err
	}
	for {
		status, keepAlive, err = c.readResponse()
		// 1xx responses are followed by the real one.
		if err != nil || status >= 200 || status == 101 {
			return status, keepAlive, err
		}
	}
}

func (c *h1Conn) readResponse() (status int, keepAlive bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	const statusAt = len("HTTP/1.1 ")
	if len(line) < statusAt+3 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, errMalformed
	}
	status, err = strconv.Atoi(string(line[statusAt : statusAt+3]))
	if err != nil {
		return 0, false, errMalformed
	}
	keepAlive = line[len("HTTP/1.")] == '1'
	contentLength := int64(-1)
	chunked := false
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return status, false, errMalformed
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return status, false, errMalformed
			}
			contentLength = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keepAlive = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keepAlive = true
			}
		}
	}
	switch {
	case status < 200 || status == 204 || status == 304:
		return status, keepAlive, nil
	case chunked:
		return status, keepAlive, c.discardChunked()
	case contentLength >= 0:
		_, err := c.br.Discard(int(contentLength))
		return status, keepAlive, err
	default: // body runs to the end of the connection
		_, err := io.Copy(io.Discard, c.br)
		return status, false, err
	}
}

func (c *h1Conn) discardChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		sizeHex, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeHex)), 16, 64)
		if err != nil || size < 0 {
			return errMalformed
		}
		if size == 0 {
			break
		}
		if _, err := c.br.Discard(int(size) + len("\r\n")); err != nil {
			return err
		}
	}
	for { // trailers, up to the empty line
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}
