package propagators

import (
	"errors"
	"fmt"
	"strings"
)

// Format is one propagation format. Formats are bit flags so that a Set is their union.
type Format uint8

// The formats, named as in OTEL_PROPAGATORS
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/#general-sdk-configuration).
const (
	TraceContext Format = 1 << iota // "tracecontext": W3C traceparent + tracestate
	Baggage                         // "baggage": W3C baggage
	B3                              // "b3": B3 single header
	B3Multi                         // "b3multi": B3 X-B3-* headers
	Jaeger                          // "jaeger": uber-trace-id + uberctx-*
	XRay                            // "xray": X-Amzn-Trace-Id
)

const allFormats = TraceContext | Baggage | B3 | B3Multi | Jaeger | XRay

// defaultExtract is the extraction order used when OTEL_PROPAGATORS is empty.
var defaultExtract = []Format{TraceContext, Baggage, B3, B3Multi, Jaeger, XRay}

// String returns the OTEL_PROPAGATORS name of f.
func (f Format) String() string {
	switch f {
	case TraceContext:
		return "tracecontext"
	case Baggage:
		return "baggage"
	case B3:
		return "b3"
	case B3Multi:
		return "b3multi"
	case Jaeger:
		return "jaeger"
	case XRay:
		return "xray"
	case 0:
		return "none"
	}
	return fmt.Sprintf("Format(%#x)", uint8(f))
}

// Set is a union of Formats.
type Set uint8

// Has reports whether f is in s.
func (s Set) Has(f Format) bool { return f != 0 && Set(f)&s == Set(f) }

// String lists the formats of s in their canonical order, comma separated ("none" when empty).
func (s Set) String() string {
	if s == 0 {
		return "none"
	}
	var b strings.Builder
	for _, f := range defaultExtract {
		if s.Has(f) {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f.String())
		}
	}
	return b.String()
}

func (s Set) add(f Format) Set { return s | Set(f) }

const (
	wantNames       = "tracecontext, baggage, b3, b3multi, jaeger, xray or none"
	wantInjectNames = "tracecontext, baggage, b3, b3multi, jaeger, xray, preserve or none"
)

func parseName(name string) (Format, bool) {
	switch name {
	case "tracecontext":
		return TraceContext, true
	case "baggage":
		return Baggage, true
	case "b3":
		return B3, true
	case "b3multi":
		return B3Multi, true
	case "jaeger":
		return Jaeger, true
	case "xray":
		return XRay, true
	}
	return 0, false
}

// ParseExtract parses an OTEL_PROPAGATORS value: comma separated names in priority order. "none" alone means
// nothing is extracted; "" means the default, tracecontext,baggage,b3,b3multi,jaeger,xray. Names are trimmed and
// matched case-insensitively; a repeated name keeps its first position.
func ParseExtract(s string) ([]Format, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return append([]Format(nil), defaultExtract...), nil
	}
	var (
		out  []Format
		seen Set
		none bool
	)
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "none" {
			none = true
			continue
		}
		f, ok := parseName(name)
		if !ok {
			return nil, fmt.Errorf("unknown propagator %q (want %s)", name, wantNames)
		}
		if !seen.Has(f) {
			seen = seen.add(f)
			out = append(out, f)
		}
	}
	if none && len(out) > 0 {
		return nil, errors.New(`propagator "none" cannot be combined with other propagators`)
	}
	if out == nil {
		out = []Format{}
	}
	return out, nil
}

// InjectSpec says which formats Inject writes: Formats, plus (Preserve) every format that arrived.
type InjectSpec struct {
	Formats  Set
	Preserve bool
}

// DefaultInject is the injection used when SIDETRACE_INJECT is empty: "preserve,tracecontext".
var DefaultInject = InjectSpec{Formats: Set(TraceContext), Preserve: true}

// ParseInject parses a SIDETRACE_INJECT value: the OTEL_PROPAGATORS names plus "preserve" (the formats that
// arrived); "" means "preserve,tracecontext" and "none" alone means no format is written.
func ParseInject(s string) (InjectSpec, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultInject, nil
	}
	var (
		spec InjectSpec
		none bool
	)
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		switch name {
		case "preserve":
			spec.Preserve = true
			continue
		case "none":
			none = true
			continue
		}
		f, ok := parseName(name)
		if !ok {
			return InjectSpec{}, fmt.Errorf("unknown propagator %q (want %s)", name, wantInjectNames)
		}
		spec.Formats = spec.Formats.add(f)
	}
	if none && (spec.Preserve || spec.Formats != 0) {
		return InjectSpec{}, errors.New(`propagator "none" cannot be combined with other propagators`)
	}
	return spec, nil
}

// String returns s in SIDETRACE_INJECT syntax, e.g. "preserve,tracecontext".
func (s InjectSpec) String() string {
	switch {
	case s.Formats == 0 && !s.Preserve:
		return "none"
	case s.Formats == 0:
		return "preserve"
	case s.Preserve:
		return "preserve," + s.Formats.String()
	}
	return s.Formats.String()
}
