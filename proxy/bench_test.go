package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sidetrace/sidetrace/internal/otlptest"
	"github.com/sidetrace/sidetrace/internal/sidecartest"
)

// BenchmarkInbound measures one request through the inbound hop (HTTP/1.1 keep-alive, 1 KiB response) with a
// sampled span exported over OTLP, against the same request sent to the upstream directly.
func BenchmarkInbound(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, payload) }))
	defer up.Close()
	rcv := otlptest.NewReceiver(b)
	run := func(b *testing.B, url string) {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		defer c.CloseIdleConnections()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := c.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, up.URL+"/") })
	for _, tc := range []struct{ name, sampler string }{{"always_on", "always_on"}, {"always_off", "always_off"}} {
		b.Run("sidetrace_"+tc.name, func(b *testing.B) {
			sc := sidecartest.Start(b, "SIDETRACE_UPSTREAM="+up.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(),
				"OTEL_TRACES_SAMPLER="+tc.sampler, "SIDETRACE_ACCESS_LOG=off", "OTEL_BSP_SCHEDULE_DELAY=200")
			run(b, sc.URL("inbound")+"/")
		})
	}
}
