package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// knownMethods are the methods the HTTP semantic conventions name; any other is recorded as _OTHER with the
// original in http.request.method_original, so a client cannot blow up the cardinality of span names.
var knownMethods = map[string]attribute.KeyValue{
	http.MethodGet:     semconv.HTTPRequestMethodGet,
	http.MethodHead:    semconv.HTTPRequestMethodHead,
	http.MethodPost:    semconv.HTTPRequestMethodPost,
	http.MethodPut:     semconv.HTTPRequestMethodPut,
	http.MethodPatch:   semconv.HTTPRequestMethodPatch,
	http.MethodDelete:  semconv.HTTPRequestMethodDelete,
	http.MethodConnect: semconv.HTTPRequestMethodConnect,
	http.MethodOptions: semconv.HTTPRequestMethodOptions,
	http.MethodTrace:   semconv.HTTPRequestMethodTrace,
	"QUERY":            semconv.HTTPRequestMethodQuery,
}

// requestAttributes names the span and lists its request attributes, per the HTTP (and, for gRPC, RPC)
// semantic conventions: https://opentelemetry.io/docs/specs/semconv/http/http-spans/.
func (h *hop) requestAttributes(r *http.Request, x *exchange, attrs []attribute.KeyValue) (string, []attribute.KeyValue) {
	method, known := knownMethods[r.Method]
	name := r.Method
	if !known {
		method = semconv.HTTPRequestMethodOther
		name = "HTTP"
		attrs = append(attrs, semconv.HTTPRequestMethodOriginal(r.Method))
	}
	attrs = append(attrs, method)
	attrs = append(attrs, semconv.NetworkProtocolVersion(protocolVersion(r)))

	if h.kind == trace.SpanKindServer {
		host, port := splitHostPort(r.Host, "http")
		attrs = append(attrs,
			semconv.URLScheme("http"),
			semconv.URLPath(r.URL.Path),
			semconv.ServerAddress(host),
			semconv.ServerPort(port),
		)
		if r.URL.RawQuery != "" {
			attrs = append(attrs, semconv.URLQuery(r.URL.RawQuery))
		}
		peerHost, peerPort := splitHostPort(r.RemoteAddr, "")
		attrs = append(attrs, semconv.NetworkPeerAddress(peerHost), semconv.NetworkPeerPort(peerPort))
		attrs = append(attrs, semconv.ClientAddress(clientAddress(r, peerHost)))
	} else {
		target := r.URL
		scheme := "http"
		if h.target != nil {
			scheme = h.target.Scheme
			u := *h.target
			u.Path = strings.TrimSuffix(u.Path, "/") + r.URL.Path
			u.RawQuery = r.URL.RawQuery
			target = &u
		} else if r.URL.Scheme != "" {
			scheme = r.URL.Scheme
		}
		host, port := splitHostPort(target.Host, scheme)
		attrs = append(attrs,
			semconv.URLFull(target.String()),
			semconv.ServerAddress(host),
			semconv.ServerPort(port),
		)
	}
	if ua := headerValue(r.Header, "User-Agent"); ua != "" {
		attrs = append(attrs, semconv.UserAgentOriginal(ua))
	}
	attrs = append(attrs, AttrCorrelationID.String(x.correlation))
	if x.extracted.Format != 0 {
		attrs = append(attrs, AttrPropagation.String(x.extracted.Format.String()))
	}
	if x.extracted.Debug {
		attrs = append(attrs, AttrDebug.Bool(true))
	}
	if x.grpc {
		method := strings.TrimPrefix(r.URL.Path, "/")
		attrs = append(attrs, semconv.RPCSystemNameGRPC, semconv.RPCMethod(method))
		name = method
	}
	return name, attrs
}

func protocolVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "1.0"
	}
	return "1.1"
}

// clientAddress is the original client: the first X-Forwarded-For entry when one came in, else the peer.
func clientAddress(r *http.Request, peer string) string {
	if xff := headerValue(r.Header, "X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
			return ip.String()
		}
	}
	return peer
}

func isGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(headerValue(r.Header, "Content-Type"), "application/grpc")
}

// grpcStatus reads grpc-status from the trailers, or from the headers of a trailers-only response.
func grpcStatus(res *http.Response) (int, bool) {
	v := headerValue(res.Trailer, "Grpc-Status")
	if v == "" {
		v = headerValue(res.Header, "Grpc-Status")
	}
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 16 {
		return 2, true // UNKNOWN: a malformed status is an unknown one
	}
	return n, true
}

var grpcCodes = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

func grpcCodeName(code int) string { return grpcCodes[code] }

// grpcIsError follows the gRPC conventions: a client span fails on any status but OK; a server span only on
// UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS.
func grpcIsError(code int, kind trace.SpanKind) bool {
	if kind == trace.SpanKindClient {
		return code != 0
	}
	switch code {
	case 2, 4, 12, 13, 14, 15:
		return true
	}
	return false
}

// maxCorrelationLen bounds a reused correlation id; a longer or odd one is replaced.
const maxCorrelationLen = 128

// correlationID returns the request's X-Correlation-Id when it is a sane token, else a new UUIDv4.
func correlationID(h http.Header) string {
	if v := h[CorrelationHeader]; len(v) == 1 && validCorrelation(v[0]) {
		return v[0]
	}
	return newUUID()
}

func validCorrelation(s string) bool {
	if s == "" || len(s) > maxCorrelationLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=') {
			return false
		}
	}
	return true
}

// newUUID returns a random UUIDv4 (RFC 9562 §5.4) from the runtime's per-thread ChaCha8 generator, a CSPRNG
// seeded from the OS, as the trace and span ids are; crypto/rand costs five times as much per id.
func newUUID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
