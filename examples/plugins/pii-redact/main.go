// Command pii-redact is a sidetrace plugin that redacts personal data and
// secrets from finished spans before any exporter sees them.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o pii-redact.wasm .
package main

import (
	sdk "github.com/sidetrace/sidetrace/wasm-sdk/go"
)

var r = defaultRedactor()

func init() {
	sdk.OnInit(func(raw []byte) error {
		var err error
		r, err = newRedactor(raw)
		return err
	})
	sdk.OnSpanEnd(onSpanEnd)
}

func onSpanEnd(s *sdk.Span) {
	for _, a := range s.Attributes() {
		if v, ok := r.value(a.Key, a.Value); ok {
			s.SetAttribute(a.Key, v)
		}
	}
	for i, ev := range s.Events() {
		for _, a := range ev.Attributes {
			if v, ok := r.value(a.Key, a.Value); ok {
				s.SetEventAttribute(i, a.Key, v)
			}
		}
	}
}

func main() {}
