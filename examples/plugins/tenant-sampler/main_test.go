//go:build !wasip1

package main

import (
	"math"
	"math/rand/v2"
	"testing"

	sdk "github.com/sidetrace/sidetrace/wasm-sdk/go"
)

const cfg = `{"header":"x-tenant-id","default":0.1,"tenants":{"acme":1.0,"free":0.0,"half":0.5}}`

func TestSampler_PerTenantRatio(t *testing.T) {
	if _, err := sdk.RunInit(cfg); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	for _, tc := range []struct {
		tenant string
		ratio  float64
	}{{"acme", 1}, {"free", 0}, {"half", 0.5}, {"other", 0.1}, {"", 0.1}} {
		sampled := 0
		for range n {
			var id sdk.TraceID
			for i := range id {
				id[i] = byte(rng.Uint32())
			}
			res := sdk.RunRequest(sdk.TestRequest{TraceID: id, Header: map[string][]string{"X-Tenant-Id": {tc.tenant}}})
			switch res.Decision {
			case sdk.RecordAndSample:
				sampled++
			case sdk.RecordOnly:
			default:
				t.Fatalf("decision %v; want RecordAndSample or RecordOnly", res.Decision)
			}
			if tc.tenant != "" && res.Tenant != tc.tenant {
				t.Fatalf("tenant %q; want %q", res.Tenant, tc.tenant)
			}
		}
		got := float64(sampled) / n
		sigma := math.Sqrt(tc.ratio * (1 - tc.ratio) / n)
		if math.Abs(got-tc.ratio) > 4*sigma+1e-9 {
			t.Errorf("tenant %q: sampled %.4f; want %.2f ± %.4f (4σ)", tc.tenant, got, tc.ratio, 4*sigma)
		}
	}
}

func TestSampler_KeepsErrors(t *testing.T) {
	if _, err := sdk.RunInit(cfg); err != nil {
		t.Fatal(err)
	}
	for status, keep := range map[int]bool{200: false, 404: false, 500: true, 503: true} {
		if got := sdk.RunResponse(sdk.TestResponse{Status: status}).Keep; got != keep {
			t.Errorf("status %d: Keep %v; want %v", status, got, keep)
		}
	}
}

func TestThreshold_MatchesRandomness(t *testing.T) {
	// Trace ids whose low 56 bits are just below and at the threshold of 0.5.
	below := sdk.TraceID{8: 0xff, 9: 0x7f, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}
	at := sdk.TraceID{9: 0x80}
	if _, err := sdk.RunInit(cfg); err != nil {
		t.Fatal(err)
	}
	h := map[string][]string{"x-tenant-id": {"half"}}
	if d := sdk.RunRequest(sdk.TestRequest{TraceID: below, Header: h}).Decision; d != sdk.RecordOnly {
		t.Errorf("below threshold: %v; want RecordOnly", d)
	}
	if d := sdk.RunRequest(sdk.TestRequest{TraceID: at, Header: h}).Decision; d != sdk.RecordAndSample {
		t.Errorf("at threshold: %v; want RecordAndSample", d)
	}
}

func TestConfig_Refused(t *testing.T) {
	for _, c := range []string{`{"default":2}`, `{"tenants":{"a":-1}}`, `{"header":""}`, `{"x":1}`} {
		if _, err := sdk.RunInit(c); err == nil {
			t.Errorf("%s: got nil error", c)
		}
	}
}
