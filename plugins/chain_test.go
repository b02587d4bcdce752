package plugins

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
)

func TestChain_LastOpinionWins(t *testing.T) {
	hello := Spec{Name: "hello", Path: wat("hello")}
	tenant := Spec{Name: "tenant", Path: example(t, "tenant-sampler"), Config: json.RawMessage(`{"tenants":{"free":0}}`)}
	silent := Spec{Name: "silent", Path: wat("faulty")} // mode 0: no opinion
	tests := []struct {
		name  string
		chain []Spec
		want  Decision
	}{
		{"sampler after hello", []Spec{hello, tenant, silent}, RecordOnly},
		{"hello after sampler", []Spec{tenant, hello, silent}, RecordAndSample},
		{"no opinion only", []Spec{silent}, NoOpinion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := load(t, Options{}, tt.chain...)
			var x Exchange
			if err := h.OnRequest(context.Background(), &Request{Method: "GET", Header: http.Header{"X-Tenant-Id": {"free"}}}, &x); err != nil {
				t.Fatal(err)
			}
			if x.Decision != tt.want || len(x.Errors) != 0 {
				t.Errorf("got %v (errors %q); want %v", x.Decision, x.Errors, tt.want)
			}
			x.Reset()
		})
	}
}

func TestTrusted_RunsWithoutChecksBesideInstrumented(t *testing.T) {
	h := load(t, Options{}, Spec{Name: "fast", Path: wat("hello"), Trusted: true}, Spec{Name: "safe", Path: wat("faulty"), Config: json.RawMessage("1")})
	gens := h.cur.Load().gens
	if h.fast == nil || gens[0].rt != h.fast || gens[0].stoppable || gens[1].rt != h.fast || !gens[1].stoppable {
		t.Fatal("trusted plugin instrumented or not in the fast runtime, or sandboxed one not instrumented")
	}
	var x Exchange
	if err := h.OnRequest(context.Background(), &Request{Method: "GET"}, &x); err != nil {
		t.Fatal(err)
	}
	// The trusted plugin ran; the sandboxed one looped and was interrupted.
	if x.Decision != RecordAndSample || len(x.Errors) != 1 || x.Errors[0] != "safe: timeout after "+goTimeout().String() {
		t.Errorf("got decision %v, errors %q", x.Decision, x.Errors)
	}
	x.Reset()
}
