// Package h1server serves the common HTTP/1.1 request itself and hands every other connection to a net/http
// Server.
//
// The common request is what a sidecar sees nearly all the time: a request line in origin form with version
// HTTP/1.1, header fields that are well formed (RFC 9112 §2-5, RFC 9110 §5), no body or a body of known length
// (RFC 9112 §6.3), and no Upgrade, Expect or Transfer-Encoding. Such requests are parsed here and the response
// is written here: the status line, the handler's fields, and the framing net/http would choose
// (Content-Length when the handler ends before the body outgrows a small buffer or declares it, chunked with
// trailers otherwise; RFC 9112 §6-7).
//
// Everything else goes to the Fallback server with the bytes already read, and that server keeps the
// connection for the rest of its life: the HTTP/2 connection preface (prior knowledge, RFC 9113 §3.3),
// upgrades (WebSocket), chunked request bodies, 100-continue, HTTP/1.0, absolute-form and asterisk-form
// targets, CONNECT, obsolete line folding, bare LF line ends, heads larger than the read buffer, and anything
// malformed, which net/http answers with its own 400. The fast path accepts a strict subset of what net/http
// accepts and builds the same http.Request for it (a fuzz target compares the two parsers), so a handler sees
// no difference between the two.
//
// What the fast path saves over net/http's server is per request: the background read goroutine and its
// deadline dance (a client that goes away is noticed by a read started only when the handler takes longer
// than a few milliseconds), the copy of the response header at WriteHeader, sorting the fields, and most of
// the allocations of parsing the head (one string for the whole head, one slice for all values, a header map,
// URL and writer reused per connection). A handler therefore must not keep the request's Header or URL after
// it returns.
//
// The response writer has two methods a proxy can use beyond http.ResponseWriter: AbortOnCancel, which sets
// the deadline of a connection the handler waits on (the upstream's) in the past when the client leaves, as
// context.AfterFunc on the request's context would without its allocations; and UseHeader, which sends a
// header map the handler already has (the upstream response's) instead of a copy in the writer's own.
package h1server
