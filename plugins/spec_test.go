package plugins

import (
	"encoding/json"
	"testing"
)

func TestParseSpecs(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Spec
		wantErr string
	}{
		{name: "empty", in: "  "},
		{name: "empty array", in: "[]"},
		{name: "full", in: `[{"name":"pii","path":"/plugins/pii.wasm","config":{"keys":["a"]},"failure":"closed"},
			{"name":"t","path":"t.wasm"}]`, want: []Spec{
			{Name: "pii", Path: "/plugins/pii.wasm", Config: json.RawMessage(`{"keys":["a"]}`), Failure: FailClosed},
			{Name: "t", Path: "t.wasm", Failure: FailOpen},
		}},
		{name: "trusted", in: `[{"name":"a","path":"a.wasm","trusted":true}]`, want: []Spec{{Name: "a", Path: "a.wasm", Failure: FailOpen, Trusted: true}}},
		{name: "trusted not a bool", in: `[{"name":"a","path":"a.wasm","trusted":"yes"}]`, wantErr: `plugins: entry 0 ("a"): trusted: want true or false`},
		{name: "null config", in: `[{"name":"a","path":"a.wasm","config":null}]`, want: []Spec{{Name: "a", Path: "a.wasm", Failure: FailOpen}}},
		{name: "scalar config", in: `[{"name":"a","path":"a.wasm","config":3}]`, want: []Spec{{Name: "a", Path: "a.wasm", Config: json.RawMessage("3"), Failure: FailOpen}}},
		{name: "unknown key", in: `[{"name":"pii","path":"p","fail":"open"}]`, wantErr: `plugins: entry 0 ("pii"): fail: unknown field; want name, path, config, failure or trusted`},
		{name: "bad failure", in: `[{"name":"a","path":"a"},{"name":"pii","path":"p","failure":"maybe"}]`, wantErr: `plugins: entry 1 ("pii"): failure: got "maybe"; want "open" or "closed"`},
		{name: "missing name", in: `[{"path":"p"}]`, wantErr: `plugins: entry 0: name: missing`},
		{name: "missing path", in: `[{"name":"x"}]`, wantErr: `plugins: entry 0 ("x"): path: missing`},
		{name: "bad name", in: `[{"name":"a b","path":"p"}]`, wantErr: `plugins: entry 0 ("a b"): name: got "a b"; want 1 to 64 letters, digits, '.', '_' or '-'`},
		{name: "duplicate", in: `[{"name":"a","path":"p"},{"name":"a","path":"q"}]`, wantErr: `plugins: entry 1 ("a"): name: duplicate of entry 0`},
		{name: "path not a string", in: `[{"name":"a","path":3}]`, wantErr: `plugins: entry 0 ("a"): path: want a string`},
		{name: "entry not an object", in: `["a"]`, wantErr: `plugins: entry 0: want a JSON object`},
		{name: "not an array", in: `{"name":"a"}`, wantErr: `plugins: want a JSON array of {"name","path","config","failure"} objects`},
		{name: "syntax", in: `[{"name":}]`, wantErr: `plugins: entry 0: invalid JSON at byte 9: invalid character '}' looking for beginning of value`},
		{name: "trailing", in: `[] []`, wantErr: `plugins: trailing data after the JSON array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSpecs([]byte(tt.in))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("error: got %q; want %q", gotErr, tt.wantErr)
			}
			if d := diff(got, tt.want); d != "" {
				t.Errorf("specs %s", d)
			}
		})
	}
}

func FuzzParseSpecs(f *testing.F) {
	f.Add(`[{"name":"pii","path":"/p.wasm","config":{"a":1},"failure":"closed"}]`)
	f.Add(`[{"name":"a","path":"p"},{"name":"a","path":"q"}]`)
	f.Fuzz(func(t *testing.T, in string) {
		specs, err := ParseSpecs([]byte(in))
		if err != nil {
			return
		}
		for _, s := range specs {
			if s.Name == "" || s.Path == "" || (s.Failure != FailOpen && s.Failure != FailClosed) {
				t.Fatalf("accepted invalid spec %+v", s)
			}
		}
	})
}
