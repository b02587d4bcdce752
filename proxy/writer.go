package proxy

import (
	"net/http"
	"sync"

	"go.opentelemetry.io/otel/attribute"
)

// bufferPool recycles the buffers ReverseProxy copies bodies through; without it every request allocates
// 32 KiB.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// get and put are Get and Put without the allocation of a new pointer per Put, for the direct path.
func (b *bufferPool) get() *[]byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return v
	}
	buf := make([]byte, 32<<10)
	return &buf
}

func (b *bufferPool) put(p *[]byte) { b.p.Put(p) }

// responseWriter records the status and the body bytes sent. http.ResponseController reaches the underlying
// writer's Hijack, Flush and deadlines through Unwrap.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	// 1xx informational responses (100 Continue, 103 Early Hints) precede the final one.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client at once.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController find the server's writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// attrPool recycles the attribute lists a hop builds for the SDK, which copies them: a kilobyte per request.
type attrPool struct{ p sync.Pool }

type attrBuf struct{ kv []attribute.KeyValue }

func (a *attrPool) get() *attrBuf {
	if b, ok := a.p.Get().(*attrBuf); ok {
		return b
	}
	return &attrBuf{kv: make([]attribute.KeyValue, 0, 24)}
}

// put returns b, keeping grown, the list it was used for, when larger; lists beyond 64 are let go.
func (a *attrPool) put(b *attrBuf, grown []attribute.KeyValue) {
	if cap(grown) > cap(b.kv) {
		b.kv = grown
	}
	if cap(b.kv) > 64 {
		return
	}
	clear(b.kv[:cap(b.kv)])
	b.kv = b.kv[:0]
	a.p.Put(b)
}
