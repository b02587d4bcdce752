package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// upstreamTimeoutError wraps the transport's error when an upstream sent no response headers within
// SIDETRACE_UPSTREAM_TIMEOUT.
type upstreamTimeoutError struct {
	err     error
	timeout time.Duration
}

func (e *upstreamTimeoutError) Error() string {
	return fmt.Sprintf("upstream sent no response headers within SIDETRACE_UPSTREAM_TIMEOUT (%v): %v", e.timeout, e.err)
}

func (e *upstreamTimeoutError) Unwrap() error { return e.err }

// transport picks the upstream protocol per request. Connections are pooled and reused in both protocols;
// the response-header deadline is the transports' own ResponseHeaderTimeout (HTTP/2 honours it too), which
// costs no allocation per request.
type transport struct {
	fast     *h1Client // the common HTTP/1.1 exchange, synchronous (see h1Client)
	h1, h2c  *http.Transport
	protocol string
	timeout  time.Duration
}

func newTransport(opts Options) *transport {
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	idle := opts.MaxIdleConnsPerHost
	if idle <= 0 {
		idle = 256
	}
	var h1p, h2p http.Protocols
	h1p.SetHTTP1(true)
	h2p.SetUnencryptedHTTP2(true)
	base := func(p *http.Protocols) *http.Transport {
		return &http.Transport{
			DialContext:           dialer.DialContext,
			Protocols:             p,
			MaxIdleConns:          0, // no global cap: the per-host one bounds each upstream
			MaxIdleConnsPerHost:   idle,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			ResponseHeaderTimeout: opts.UpstreamTimeout,
			// A transparent proxy must not ask for compression the client did not ask for.
			DisableCompression: true,
			// The egress forward proxy serves HTTP_PROXY traffic: never chain to the environment's proxy.
			Proxy: nil,
		}
	}
	return &transport{
		fast: newH1Client(dialer.DialContext, idle, 90*time.Second, opts.UpstreamTimeout),
		h1:   base(&h1p), h2c: base(&h2p), protocol: opts.UpstreamProtocol, timeout: opts.UpstreamTimeout,
	}
}

func (t *transport) closeIdle() {
	t.fast.closeIdle(true)
	t.h1.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
}

func (t *transport) pick(r *http.Request) http.RoundTripper {
	switch {
	case r.URL.Scheme == "https":
		return t.h1 // TLS origination negotiates its own protocol
	case t.protocol == "h2c", t.protocol == "auto" && isGRPC(r):
		return t.h2c // gRPC needs HTTP/2 end to end
	case t.fast.eligible(r):
		return t.fast
	}
	return t.h1
}

// RoundTrip forwards r. A response-header timeout comes back as *upstreamTimeoutError (504); a dial failure
// stays a dial error (502), even a dial timeout: the upstream was not reached.
func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.pick(r).RoundTrip(r)
	if err != nil && isHeaderTimeout(err) {
		return nil, &upstreamTimeoutError{err: err, timeout: t.timeout}
	}
	return res, err
}

func isHeaderTimeout(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
