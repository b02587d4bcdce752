// Command tenant-sampler is a sidetrace plugin that samples each tenant at its
// own ratio, decided from the trace id so that every hop agrees, and never
// loses an error: unsampled requests are still recorded, and their spans are
// kept when the response status is 5xx.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o tenant-sampler.wasm .
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	sdk "github.com/sidetrace/sidetrace/wasm-sdk/go"
)

// config is the plugin's config, e.g.
//
//	{"header":"x-tenant-id","default":0.1,"tenants":{"acme":1.0,"free":0.0}}
type config struct {
	// Header carries the tenant id (default "x-tenant-id").
	Header string `json:"header"`
	// Default is the sampling ratio of tenants not listed and of requests
	// without a tenant (default 1).
	Default *float64 `json:"default"`
	// Tenants maps tenant ids to sampling ratios in [0, 1].
	Tenants map[string]float64 `json:"tenants"`
}

// sampler is the parsed config: thresholds instead of ratios.
type sampler struct {
	header     string
	def        uint64
	thresholds map[string]uint64
}

var s sampler

// randomnessBits is the width of the trace id's random part used for
// consistent probability sampling (OpenTelemetry, "TraceIdRatioBased" with
// the W3C Trace Context level 2 random flag): the low 56 bits.
const randomnessBits = 56

const maxThreshold = uint64(1) << randomnessBits

// threshold converts a ratio to the rejection threshold T: a trace is sampled
// when its randomness R >= T, i.e. with probability 1-T/2^56 = ratio.
func threshold(ratio float64) uint64 {
	if ratio >= 1 {
		return 0
	}
	if ratio <= 0 {
		return maxThreshold
	}
	return uint64(math.Round((1 - ratio) * float64(maxThreshold)))
}

// randomness is the trace id's low 56 bits, big-endian.
func randomness(id sdk.TraceID) uint64 {
	var r uint64
	for _, b := range id[16-randomnessBits/8:] {
		r = r<<8 | uint64(b)
	}
	return r
}

func parse(raw []byte) (sampler, error) {
	c := config{Header: "x-tenant-id"}
	if len(raw) > 0 {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&c); err != nil {
			return sampler{}, fmt.Errorf("tenant-sampler: config: %v", err)
		}
	}
	if c.Header == "" {
		return sampler{}, errors.New("tenant-sampler: config: header: empty")
	}
	def := 1.0
	if c.Default != nil {
		def = *c.Default
	}
	check := func(what string, r float64) error {
		if math.IsNaN(r) || r < 0 || r > 1 {
			return fmt.Errorf("tenant-sampler: config: %s: ratio %v outside [0, 1]", what, r)
		}
		return nil
	}
	if err := check("default", def); err != nil {
		return sampler{}, err
	}
	out := sampler{header: c.Header, def: threshold(def), thresholds: map[string]uint64{}}
	for t, r := range c.Tenants {
		if err := check("tenants."+t, r); err != nil {
			return sampler{}, err
		}
		out.thresholds[t] = threshold(r)
	}
	return out, nil
}

func init() {
	sdk.OnInit(func(raw []byte) error {
		var err error
		if s, err = parse(raw); err != nil {
			return err
		}
		sdk.RequestHeaders(s.header)
		return nil
	})
	sdk.OnRequest(onRequest)
	sdk.OnResponse(onResponse)
}

func onRequest(r sdk.Request) sdk.Decision {
	tenant := r.Header(s.header)
	th := s.def
	if tenant != "" {
		r.SetTenant(tenant)
		r.SetAttribute("tenant.id", sdk.String(tenant))
		if t, ok := s.thresholds[tenant]; ok {
			th = t
		}
	}
	if randomness(r.TraceID()) >= th {
		return sdk.RecordAndSample
	}
	// Not sampled, but recorded: the response hook keeps it if it fails.
	return sdk.RecordOnly
}

func onResponse(r sdk.Response) {
	if r.Status() >= 500 {
		r.Keep()
	}
}

func main() {}
