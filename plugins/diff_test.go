package plugins

import (
	"fmt"
	"reflect"
	"strings"
)

// diff returns "" when got and want are deeply equal, else a line diff of
// their %#v renderings, one element per line for slices.
func diff(got, want any) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	g, w := lines(got), lines(want)
	var b strings.Builder
	b.WriteString("(-got +want)\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl == wl {
			fmt.Fprintf(&b, "  %s\n", gl)
			continue
		}
		if i < len(g) {
			fmt.Fprintf(&b, "- %s\n", gl)
		}
		if i < len(w) {
			fmt.Fprintf(&b, "+ %s\n", wl)
		}
	}
	return b.String()
}

func lines(v any) []string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		out := make([]string, rv.Len())
		for i := range out {
			out[i] = fmt.Sprintf("%+v", rv.Index(i).Interface())
		}
		return out
	}
	return strings.Split(fmt.Sprintf("%+v", v), "\n")
}
