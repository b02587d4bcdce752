//go:build !wasip1

package sdk

import "testing"

func benchView() []byte {
	var e testEncoder
	e.u8(2)
	e.b = append(e.b, make([]byte, 24)...)
	e.str("GET /cart")
	e.attrs([]Attribute{
		{"http.request.method", String("GET")},
		{"url.full", String("https://shop/cart?id=1")},
		{"url.query", String("id=1")},
		{"http.route", String("/cart")},
		{"server.address", String("shop")},
		{"http.response.status_code", Int64(200)},
		{"user_agent.original", String("Mozilla/5.0 (X11; Linux x86_64)")},
		{"tenant.id", String("acme")},
		{"app.client_class", String("mobile")},
		{"deployment.environment", String("prod")},
	})
	e.u32(0)
	return e.b
}

// BenchmarkSpanEndDecode measures the SDK's side of a span-end call: decoding
// a ten-attribute span view and encoding an empty result.
func BenchmarkSpanEndDecode(b *testing.B) {
	reset()
	OnSpanEnd(func(s *Span) {})
	v := benchView()
	b.ReportAllocs()
	for b.Loop() {
		handleSpanEnd(v)
	}
}
