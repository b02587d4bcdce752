package config

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
)

type fieldInfo struct {
	group string
	field reflect.StructField
	env   string
	def   string
	help  string
}

// fields lists every configurable field in declaration order, read from the struct tags.
func fields() []fieldInfo {
	var out []fieldInfo
	top := reflect.TypeOf(Config{})
	for i := 0; i < top.NumField(); i++ {
		g := top.Field(i)
		for j := 0; j < g.Type.NumField(); j++ {
			f := g.Type.Field(j)
			name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
			if name == "" {
				continue
			}
			out = append(out, fieldInfo{group: g.Tag.Get("group"), field: f, env: name, def: f.Tag.Get("envDefault"), help: f.Tag.Get("help")})
		}
	}
	return out
}

// Vars lists the environment variables sidetrace reads.
func Vars() []string {
	var names []string
	for _, f := range fields() {
		names = append(names, f.env)
	}
	return names
}

// Usage writes the help text `sidetrace -h` prints: every variable with its default and meaning.
func Usage(w io.Writer) {
	fmt.Fprint(w, `sidetrace: a tracing sidecar. Every request through it becomes a span: a SERVER span on the inbound hop
(traffic to the local service), a CLIENT span on the egress hop (calls the service makes).

Usage: sidetrace          run the proxy, configured by the environment variables below
       sidetrace -h       print this help

`)
	group := ""
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fields() {
		if f.group != group {
			tw.Flush()
			group = f.group
			fmt.Fprintf(w, "%s:\n", group)
		}
		def := f.def
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.env, def, f.help)
	}
	tw.Flush()
	fmt.Fprint(w, `
A bad value exits at start-up with one line naming the variable. Admin endpoints: /healthz, /readyz, /metrics,
/debug/traces (?service=, ?min_duration=, ?error=true, ?limit=), /debug/traces/{traceId} and, with
SIDETRACE_ADMIN_PPROF=true, /debug/pprof/.

Go runtime: GOMAXPROCS, GOGC and GOMEMLIMIT are honoured. Unset, GOGC is 25 while plugins compile, then 150
while the live heap is under 32 MiB (100 above); unset, GOMEMLIMIT is 90% of the cgroup v2 memory limit, if any.
`)
}
