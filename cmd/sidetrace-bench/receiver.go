package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"sync/atomic"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
)

func cmdReceiver(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("receiver", stderr)
	addr := fs.String("addr", "127.0.0.1:4318", "listen address")
	countSpans := fs.Bool("spans", true, "decode each export to count its spans")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OTLP/HTTP receiver listening on %s (POST /v1/traces, GET /stats)\n", ln.Addr())
	return serve(ctx, newServer(newReceiver(*countSpans)), ln)
}

// receiverStats is what GET /stats on the receiver answers.
type receiverStats struct {
	Requests uint64 `json:"requests"` // export requests accepted
	Spans    uint64 `json:"spans"`    // spans in them, when decoded
	Bytes    uint64 `json:"bytes"`    // request body bytes as sent (compressed if they were)
	Errors   uint64 `json:"errors"`   // export requests that could not be read or decoded
}

// receiver is an OTLP/HTTP trace receiver (https://opentelemetry.io/docs/specs/otlp/#otlphttp) that
// counts what it is sent and keeps nothing.
type receiver struct {
	countSpans                     bool
	requests, spans, bytes, errors atomic.Uint64
}

func newReceiver(countSpans bool) *receiver { return &receiver{countSpans: countSpans} }

func (rc *receiver) stats() receiverStats {
	return receiverStats{Requests: rc.requests.Load(), Spans: rc.spans.Load(), Bytes: rc.bytes.Load(), Errors: rc.errors.Load()}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/stats" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rc.stats())
	case r.URL.Path == "/v1/traces" && r.Method == http.MethodPost:
		rc.export(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (rc *receiver) export(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	isJSON := ct == "application/json"
	counted := &countingReader{r: r.Body}
	var body io.Reader = counted
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(counted)
		if err != nil {
			rc.fail(w, err)
			return
		}
		defer zr.Close()
		body = zr
	}
	if !rc.countSpans {
		if _, err := io.Copy(io.Discard, body); err != nil {
			rc.fail(w, err)
			return
		}
	} else {
		data, err := io.ReadAll(body)
		if err != nil {
			rc.fail(w, err)
			return
		}
		var n uint64
		if isJSON {
			var req coltracepb.ExportTraceServiceRequest
			err = protojson.Unmarshal(data, &req)
			for _, rs := range req.GetResourceSpans() {
				for _, ss := range rs.GetScopeSpans() {
					n += uint64(len(ss.GetSpans()))
				}
			}
		} else {
			n, err = countSpans(data)
		}
		if err != nil {
			rc.fail(w, err)
			return
		}
		rc.spans.Add(n)
	}
	rc.requests.Add(1)
	rc.bytes.Add(uint64(counted.n))

	// An empty ExportTraceServiceResponse: zero bytes in protobuf, {} in JSON.
	if isJSON {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) fail(w http.ResponseWriter, err error) {
	rc.errors.Add(1)
	http.Error(w, "receiver: "+err.Error(), http.StatusBadRequest)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countSpans counts the spans of a protobuf ExportTraceServiceRequest by walking the wire format, without
// decoding them: the receiver shares its CPU with the load generator and the upstream, and a full decode of
// every export (a few milliseconds per 512 spans) showed in the latency measured for the proxy.
// ExportTraceServiceRequest.resource_spans = 1, ResourceSpans.scope_spans = 2, ScopeSpans.spans = 2.
func countSpans(b []byte) (uint64, error) {
	var n uint64
	err := eachField(b, 1, func(rs []byte) error {
		return eachField(rs, 2, func(ss []byte) error {
			return eachField(ss, 2, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// eachField calls f with the bytes of every length-delimited field numbered num in the message b, and checks
// that every other field is well formed.
func eachField(b []byte, num protowire.Number, f func([]byte) error) error {
	for len(b) > 0 {
		fn, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		if fn == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := f(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(fn, typ, b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
	}
	return nil
}
