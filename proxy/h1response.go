package proxy

import (
	"bufio"
	"io"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sidetrace/sidetrace/proxy/internal/h1head"
)

// readResponseFast parses the common upstream response from what br has buffered: HTTP/1.1, a final status,
// well-formed fields, a body of declared length (or none by status or method), no Transfer-Encoding and no
// Trailer. It reports false, having consumed nothing, for anything else, which http.ReadResponse then reads.
// It builds what http.ReadResponse builds for the same bytes (FuzzReadResponseFast compares the two) with one
// string for the whole head and one slice for the values. st, when not nil, holds the response, its body and
// (for up to len(st.vals) fields) its values.
func readResponseFast(br *bufio.Reader, req *http.Request, st *responseStore) (*http.Response, bool) {
	buf, _ := br.Peek(br.Buffered())
	n := h1head.HeadEnd(buf)
	if n <= 0 {
		return nil, false
	}
	res, bodyLen, ok := parseResponseHead(string(buf[:n]), req, st)
	if !ok {
		return nil, false
	}
	br.Discard(n)
	if bodyLen > 0 {
		var b *lengthBody
		if st != nil {
			b = &st.body
		} else {
			b = new(lengthBody)
		}
		*b = lengthBody{br: br, remaining: bodyLen}
		res.Body = b
	} else {
		res.Body = http.NoBody
	}
	return res, true
}

// responseStore is room for one response's objects in a caller's per-request state (the direct path's
// exchange), so that reading a common response allocates only its head string and header map. Nothing in it
// is reused for another response.
type responseStore struct {
	res  http.Response
	body lengthBody
	wrap h1Body
	vals [8]string
}

// parseResponseHead returns the response and the length of its body (0 for none); st as for readResponseFast.
func parseResponseHead(head string, req *http.Request, st *responseStore) (*http.Response, int64, bool) {
	line, rest, _ := strings.Cut(head, "\r\n")
	proto, status, ok := strings.Cut(line, " ")
	if !ok || proto != "HTTP/1.1" || len(status) < 3 {
		return nil, 0, false
	}
	code := 0
	for i := 0; i < 3; i++ {
		c := status[i]
		if c < '0' || c > '9' {
			return nil, 0, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || (len(status) > 3 && status[3] != ' ') || !httpguts.ValidHeaderFieldValue(status) {
		return nil, 0, false // 1xx and 101 are read by http.ReadResponse
	}
	var res *http.Response
	if st != nil {
		res = &st.res
	} else {
		res = new(http.Response)
	}
	*res = http.Response{
		Status: status, StatusCode: code, Proto: proto, ProtoMajor: 1, ProtoMinor: 1,
		ContentLength: -1, Request: req,
	}
	nfields := strings.Count(rest, "\r\n") - 1
	h := make(http.Header, nfields)
	var vals []string
	if st != nil && nfields <= len(st.vals) {
		vals = st.vals[:0:nfields]
	} else {
		vals = make([]string, 0, nfields)
	}
	for {
		k, v, after, done, ok := h1head.NextField(rest)
		if done {
			break
		}
		if !ok {
			return nil, 0, false
		}
		rest = after
		switch k {
		case "Transfer-Encoding", "Trailer":
			return nil, 0, false
		case "Content-Length":
			if _, dup := h[k]; dup {
				return nil, 0, false
			}
			cl, ok := h1head.ParseContentLength(v)
			if !ok {
				return nil, 0, false
			}
			res.ContentLength = cl
		case "Connection":
			if httpguts.HeaderValuesContainsToken([]string{v}, "close") {
				res.Close = true
			}
		}
		vals = h1head.Add(h, vals, k, v)
	}
	res.Header = h
	if res.Close {
		delete(h, "Connection") // as http.ReadResponse does
	}
	h1head.FixPragma(h)
	switch {
	case req.Method == http.MethodHead:
		return res, 0, true // no body; the declared length is reported (-1 when none)
	case code == http.StatusNoContent || code == http.StatusNotModified:
		res.ContentLength = 0 // no body, whatever was declared
		return res, 0, true
	case res.ContentLength < 0:
		return nil, 0, false // delimited by the close of the connection: http.ReadResponse
	}
	return res, res.ContentLength, true
}

// lengthBody reads a response body of declared length from the connection's buffer.
type lengthBody struct {
	br        *bufio.Reader
	remaining int64
	err       error
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	switch {
	case b.remaining == 0:
		b.err = io.EOF
		return n, io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return n, err
}

func (b *lengthBody) Close() error { return nil }
