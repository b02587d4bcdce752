// Command hello is the example service `make run` puts sidetrace in front of. It answers a few endpoints that
// show what sidetrace records:
//
//	GET /             a greeting
//	GET /slow?ms=300  answers after a delay
//	GET /fail         answers 500
//	GET /events       server-sent events, one every 200 ms, five in all
//	GET /call?url=U   calls U through the egress proxy (HTTP_PROXY), passing the trace context on
//
// An instrumented service passes the trace context of the request it serves to the calls it makes; /call does
// that by hand (traceparent and tracestate), as any OpenTelemetry SDK would.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	log.Printf("hello: listening on %s", *addr)
	srv := &http.Server{Addr: *addr, Handler: handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s (traceparent %q)\n", hostname(), r.Header.Get("traceparent"))
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		if ms <= 0 {
			ms = 300
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			fmt.Fprintf(w, "slept %d ms\n", ms)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "something broke", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 1; i <= 5; i++ {
			fmt.Fprintf(w, "data: event %d at %s\n\n", i, time.Now().Format(time.RFC3339Nano))
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-time.After(200 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("GET /call", func(w http.ResponseWriter, r *http.Request) {
		target := r.URL.Query().Get("url")
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
		if err != nil || target == "" {
			http.Error(w, "want ?url=http://...", http.StatusBadRequest)
			return
		}
		for _, h := range []string{"traceparent", "tracestate", "baggage", "X-Correlation-Id"} {
			if v := r.Header.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		res, err := egress.Do(req) // through HTTP_PROXY: the call crosses sidetrace's egress hop
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.WriteHeader(res.StatusCode)
		io.Copy(w, res.Body)
	})
	return mux
}

// egress sends every call through HTTP_PROXY when it is set. (http.ProxyFromEnvironment would skip the proxy
// for loopback targets, which is all this example calls.)
var egress = &http.Client{Transport: &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
	if p := os.Getenv("HTTP_PROXY"); p != "" {
		return url.Parse(p)
	}
	return nil, nil
}}}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
