package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of a CONNECT tunnel's span: bytes each way through the tunnel.
const (
	AttrTunnelBytesUp   = attribute.Key("sidetrace.tunnel.bytes_sent")
	AttrTunnelBytesDown = attribute.Key("sidetrace.tunnel.bytes_received")
)

// connect tunnels a CONNECT request (HTTPS through HTTP_PROXY, or any TCP) without parsing it. The tunnel gets
// a CLIENT span of its own, from the CONNECT to the close of either side.
func (h *hop) connect(w http.ResponseWriter, r *http.Request) {
	h.stats.Requests.Add(1)
	h.stats.InFlight.Add(1)
	defer h.stats.InFlight.Add(-1)
	start := time.Now()
	ex := h.prop.Extract(r.Header)
	parent, links := h.parent(r.Context(), &ex)
	correlation := correlationID(r.Header)
	host, port := splitHostPort(r.Host, "https")
	_, span := h.p.opts.Tracer.Start(parent, "CONNECT",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(start),
		trace.WithLinks(links...),
		trace.WithAttributes(
			semconv.HTTPRequestMethodConnect,
			semconv.ServerAddress(host),
			semconv.ServerPort(port),
			semconv.NetworkProtocolVersion(protocolVersion(r)),
			AttrCorrelationID.String(correlation),
		),
	)
	status, up, down := http.StatusOK, int64(0), int64(0)
	outcome := OutcomeCompleted
	defer func() {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status), AttrTunnelBytesUp.Int64(up), AttrTunnelBytesDown.Int64(down), AttrOutcome.String(outcome))
		sc := span.SpanContext() // before the end, after which the export may reuse the span
		span.End()
		if l := h.p.opts.AccessLog; l != nil {
			l.Info("request", "hop", "egress", "trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String(),
				"correlation_id", correlation, "method", r.Method, "path", r.Host, "status", status,
				"duration_ms", float64(time.Since(start))/float64(time.Millisecond), "bytes", down, "outcome", outcome)
		}
	}()

	dialer := net.Dialer{Timeout: h.p.opts.DialTimeout}
	backend, err := dialer.DialContext(r.Context(), "tcp", r.Host)
	if err != nil {
		status = http.StatusBadGateway
		h.stats.Failed.Add(1)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(semconv.ErrorTypeKey.String("502"))
		http.Error(w, "sidetrace: bad gateway: "+err.Error(), status)
		return
	}
	defer backend.Close()

	var client io.ReadWriter
	var closeClient func()
	if r.ProtoMajor == 1 {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			status = http.StatusInternalServerError
			span.RecordError(err)
			http.Error(w, "sidetrace: cannot tunnel: "+err.Error(), status)
			return
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			outcome = OutcomeClientGone
			return
		}
		// Bytes the client sent after its CONNECT are already buffered: they go first.
		client = struct {
			io.Reader
			io.Writer
		}{io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), conn), conn}
		closeClient = func() { conn.Close() }
	} else {
		// HTTP/2 CONNECT (RFC 9113 §8.5): the stream is the tunnel.
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		client = struct {
			io.Reader
			io.Writer
		}{r.Body, flushWriter{w, rc}}
		closeClient = func() { r.Body.Close() }
	}

	h.p.tunnels.Add(1)
	defer h.p.tunnels.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(h.p.hardStop, cancel)
	defer stop()
	context.AfterFunc(ctx, func() { backend.Close(); closeClient() })

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		up, _ = io.Copy(backend, client)
		if tc, ok := backend.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		down, _ = io.Copy(client, backend)
		cancel()
	}()
	wg.Wait()
}

type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}
