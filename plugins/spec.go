package plugins

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
)

// Failure policies for Spec.Failure.
const (
	FailOpen   = "open"   // the request goes on; the span records sidetrace.plugin.error
	FailClosed = "closed" // the request is refused with 503; a failed span-end hook drops the span
)

// Spec configures one plugin. A SIDETRACE_PLUGINS value is a JSON array of
// them, in run order:
//
//	[{"name":"pii","path":"/plugins/pii.wasm","config":{"keys":["user.email"]},"failure":"closed"}]
type Spec struct {
	// Name identifies the plugin in logs, errors and Stats: letters, digits, '.', '_' or '-'; unique.
	Name string `json:"name"`
	// Path is the plugin's .wasm file; it is polled for changes by Host.Watch.
	Path string `json:"path"`
	// Config is any JSON value, handed verbatim to the plugin's init export.
	Config json.RawMessage `json:"config,omitempty"`
	// Failure is "open" (default) or "closed"; see FailOpen and FailClosed.
	Failure string `json:"failure,omitempty"`
	// Trusted runs the plugin without any deadline checks (see
	// Options.NoInterrupt): a few percent faster than the checks the host
	// inserts, but one stuck in a loop hangs its caller for ever, so only for
	// plugins you audited.
	Trusted bool `json:"trusted,omitempty"`
}

func (s Spec) failClosed() bool { return s.Failure == FailClosed }

var validName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ParseSpecs parses a SIDETRACE_PLUGINS (or SIDETRACE_PLUGINS_FILE) JSON array.
// Unknown keys are rejected; errors name the entry and the field, e.g.
// `plugins: entry 1 ("pii"): failure: got "maybe"; want "open" or "closed"`.
// Empty or blank input means no plugins.
func ParseSpecs(data []byte) ([]Spec, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", syntaxError(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, errors.New("plugins: want a JSON array of {\"name\",\"path\",\"config\",\"failure\"} objects")
	}
	var specs []Spec
	seen := map[string]int{}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("plugins: entry %d: %w", i, syntaxError(err))
		}
		s, err := parseSpec(raw)
		label := fmt.Sprintf("entry %d", i)
		if s.Name != "" {
			label += fmt.Sprintf(" (%q)", s.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("plugins: %s: %w", label, err)
		}
		if j, dup := seen[s.Name]; dup {
			return nil, fmt.Errorf("plugins: %s: name: duplicate of entry %d", label, j)
		}
		seen[s.Name] = i
		specs = append(specs, s)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("plugins: %w", syntaxError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("plugins: trailing data after the JSON array")
	}
	return specs, nil
}

func parseSpec(raw json.RawMessage) (Spec, error) {
	var s Spec
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil || probe == nil {
		return s, errors.New("want a JSON object")
	}
	// Decode the name first so that later errors can name the entry.
	if v, ok := probe["name"]; ok {
		_ = json.Unmarshal(v, &s.Name)
	}
	for _, k := range sortedKeys(probe) {
		v := probe[k]
		switch k {
		case "name":
			if err := json.Unmarshal(v, &s.Name); err != nil {
				return s, errors.New("name: want a string")
			}
		case "path":
			if err := json.Unmarshal(v, &s.Path); err != nil {
				return s, errors.New("path: want a string")
			}
		case "config":
			if !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
				s.Config = append(json.RawMessage(nil), bytes.TrimSpace(v)...)
			}
		case "failure":
			if err := json.Unmarshal(v, &s.Failure); err != nil {
				return s, errors.New("failure: want a string")
			}
		case "trusted":
			if err := json.Unmarshal(v, &s.Trusted); err != nil {
				return s, errors.New("trusted: want true or false")
			}
		default:
			return s, fmt.Errorf("%s: unknown field; want name, path, config, failure or trusted", k)
		}
	}
	switch {
	case s.Name == "":
		return s, errors.New("name: missing")
	case !validName.MatchString(s.Name):
		return s, fmt.Errorf("name: got %q; want 1 to 64 letters, digits, '.', '_' or '-'", s.Name)
	case s.Path == "":
		return s, errors.New("path: missing")
	}
	switch s.Failure {
	case "":
		s.Failure = FailOpen
	case FailOpen, FailClosed:
	default:
		return s, fmt.Errorf("failure: got %q; want %q or %q", s.Failure, FailOpen, FailClosed)
	}
	return s, nil
}

// sortedKeys orders an entry's keys: unknown ones first (sorted, so that
// the error is deterministic), then name, path, config, failure.
func sortedKeys(m map[string]json.RawMessage) []string {
	known := []string{"name", "path", "config", "failure", "trusted"}
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range known {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	return keys
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)
	}
	return err
}
