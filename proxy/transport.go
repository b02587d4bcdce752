package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// errUpstreamTimeout is the cause of an upstream request cancelled for not answering in time.
var errUpstreamTimeout = errors.New("upstream sent no response headers within SIDETRACE_UPSTREAM_TIMEOUT")

// transport picks the upstream protocol per request and enforces the response-header deadline. Connections
// are pooled and reused in both protocols.
type transport struct {
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
			// A transparent proxy must not ask for compression the client did not ask for.
			DisableCompression: true,
			// The egress forward proxy serves HTTP_PROXY traffic: never chain to the environment's proxy.
			Proxy: nil,
		}
	}
	return &transport{h1: base(&h1p), h2c: base(&h2p), protocol: opts.UpstreamProtocol, timeout: opts.UpstreamTimeout}
}

func (t *transport) closeIdle() {
	t.h1.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
}

func (t *transport) pick(r *http.Request) http.RoundTripper {
	switch {
	case r.URL.Scheme == "https":
		return t.h1 // TLS origination negotiates its own protocol
	case t.protocol == "h2c", t.protocol == "auto" && isGRPC(r):
		return t.h2c // gRPC needs HTTP/2 end to end
	}
	return t.h1
}

// RoundTrip forwards r, cancelling it with errUpstreamTimeout when the response headers take longer than the
// configured timeout. The body of a response, however long it streams, is not limited.
func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(r.Context())
	timer := time.AfterFunc(t.timeout, func() { cancel(errUpstreamTimeout) })
	res, err := t.pick(r).RoundTrip(r.WithContext(ctx))
	if !timer.Stop() {
		if err == nil {
			res.Body.Close()
		}
		cancel(nil)
		return nil, fmt.Errorf("%w: %v", errUpstreamTimeout, t.timeout)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	// The request's context must live as long as the response body: cancel when it is closed. A 101
	// response's body is the upgraded connection, which ReverseProxy needs as an io.ReadWriteCloser.
	if rwc, ok := res.Body.(io.ReadWriteCloser); ok {
		res.Body = &cancelRWC{ReadWriteCloser: rwc, cancel: cancel}
	} else {
		res.Body = &cancelBody{ReadCloser: res.Body, cancel: cancel}
	}
	return res, nil
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

type cancelRWC struct {
	io.ReadWriteCloser
	cancel context.CancelCauseFunc
}

func (b *cancelRWC) Close() error {
	err := b.ReadWriteCloser.Close()
	b.cancel(nil)
	return err
}
