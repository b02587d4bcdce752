// Command custom-attributes is a sidetrace plugin that copies request headers
// into span attributes and adds static attributes to every span.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o custom-attributes.wasm .
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	sdk "github.com/sidetrace/sidetrace/wasm-sdk/go"
)

// config is the plugin's config, e.g.
//
//	{"headers":{"x-user-agent-class":"app.client_class"},"static":{"deployment.environment":"prod"}}
type config struct {
	// Headers maps request header names to attribute keys; absent headers add nothing.
	Headers map[string]string `json:"headers"`
	// Static attributes added to every request span: strings, numbers or booleans.
	Static map[string]any `json:"static"`
}

type mapping struct{ header, key string }

var (
	headers []mapping
	static  []sdk.Attribute
)

func parse(raw []byte) ([]mapping, []sdk.Attribute, error) {
	var c config
	if len(raw) > 0 {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		d.UseNumber()
		if err := d.Decode(&c); err != nil {
			return nil, nil, fmt.Errorf("custom-attributes: config: %v", err)
		}
	}
	var hs []mapping
	for h, k := range c.Headers {
		if h == "" || k == "" {
			return nil, nil, fmt.Errorf("custom-attributes: config: headers: empty header or key in %q: %q", h, k)
		}
		hs = append(hs, mapping{h, k})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].header < hs[j].header })
	if _, ok := c.Static[""]; ok {
		return nil, nil, fmt.Errorf("custom-attributes: config: static: empty key")
	}
	var st []sdk.Attribute
	for k, v := range c.Static {
		var val sdk.Value
		switch v := v.(type) {
		case string:
			val = sdk.String(v)
		case bool:
			val = sdk.Bool(v)
		case json.Number:
			if n, err := v.Int64(); err == nil {
				val = sdk.Int64(n)
			} else if f, err := v.Float64(); err == nil {
				val = sdk.Float64(f)
			}
		default:
			return nil, nil, fmt.Errorf("custom-attributes: config: static.%s: want a string, number or boolean", k)
		}
		st = append(st, sdk.Attribute{Key: k, Value: val})
	}
	sort.Slice(st, func(i, j int) bool { return st[i].Key < st[j].Key })
	return hs, st, nil
}

func init() {
	sdk.OnInit(func(raw []byte) error {
		var err error
		if headers, static, err = parse(raw); err != nil {
			return err
		}
		for _, m := range headers {
			sdk.RequestHeaders(m.header)
		}
		return nil
	})
	sdk.OnRequest(func(r sdk.Request) sdk.Decision {
		for _, m := range headers {
			if v := r.Header(m.header); v != "" {
				r.SetAttribute(m.key, sdk.String(v))
			}
		}
		for _, a := range static {
			r.SetAttribute(a.Key, a.Value)
		}
		return sdk.NoOpinion
	})
}

func main() {}
