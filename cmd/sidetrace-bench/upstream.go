package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

func cmdUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("upstream", stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	size := fs.Int("size", 1024, "response body size in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < 0 {
		return fmt.Errorf("-size %d: want >= 0", *size)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "upstream listening on %s, %d-byte bodies\n", ln.Addr(), *size)
	return serve(ctx, newUpstreamServer(*size), ln)
}

// newUpstreamServer returns a server that answers every request with size bytes of body, over
// HTTP/1.1 keep-alive or HTTP/2 with prior knowledge (h2c) on the same port.
func newUpstreamServer(size int) *http.Server {
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	contentLength := []string{strconv.Itoa(size)}
	contentType := []string{"application/octet-stream"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Drain a request body so the connection stays reusable; GETs have none.
		if r.Body != nil && r.ContentLength != 0 {
			io.Copy(io.Discard, r.Body)
		}
		hdr := w.Header()
		hdr["Content-Length"] = contentLength
		hdr["Content-Type"] = contentType
		w.Write(body)
	})
	return newServer(h)
}

// newServer returns an http.Server speaking HTTP/1.1 and h2c with prior knowledge.
func newServer(h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	return srv
}

// serve runs srv on ln until ctx is done, then shuts it down.
func serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
