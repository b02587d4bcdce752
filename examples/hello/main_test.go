package main

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/sidetrace/sidetrace/internal/otlptest"
	"github.com/sidetrace/sidetrace/internal/sidecartest"
)

// The example as `make run` sets it up: the service behind a sidecar, calling out through the egress hop.
// GET /call through the inbound hop makes one trace: SERVER -> CLIENT -> SERVER.
func TestHello_BehindSidecar_CallMakesOneTrace(t *testing.T) {
	svc := httptest.NewServer(handler())
	defer svc.Close()
	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM="+svc.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint(), "OTEL_SERVICE_NAME=hello")
	t.Setenv("HTTP_PROXY", sc.URL("egress"))
	defer egress.CloseIdleConnections()
	c := &http.Client{}
	defer c.CloseIdleConnections()

	res, err := c.Get(sc.URL("inbound") + "/call?url=" + sc.URL("inbound") + "/slow?ms=10")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "slept 10 ms\n" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	spans := rcv.WaitSpans(t, 3, 10*time.Second)
	byParent := map[string]otlptest.Span{}
	var root otlptest.Span
	for _, s := range spans {
		if s.ParentSpanID == "" {
			root = s
		}
		byParent[s.ParentSpanID] = s
	}
	cl, ok := byParent[root.SpanID]
	srv, ok2 := byParent[cl.SpanID]
	if root.Kind != tracepb.Span_SPAN_KIND_SERVER || !ok || cl.Kind != tracepb.Span_SPAN_KIND_CLIENT || !ok2 || srv.Kind != tracepb.Span_SPAN_KIND_SERVER || srv.TraceID != root.TraceID {
		t.Errorf("want SERVER -> CLIENT -> SERVER in one trace; got:%s", otlptest.Summary(spans))
	}
}

func TestHello_Endpoints(t *testing.T) {
	svc := httptest.NewServer(handler())
	defer svc.Close()
	c := svc.Client()
	for path, want := range map[string]int{"/": 200, "/fail": 500, "/slow?ms=1": 200, "/call": 400} {
		res, err := c.Get(svc.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: got %d; want %d", path, res.StatusCode, want)
		}
	}
	res, err := c.Get(svc.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	n := 0
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: event") {
			n++
		}
	}
	if n != 5 {
		t.Errorf("events: got %d; want 5", n)
	}
}
