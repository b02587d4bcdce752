package plugins

import (
	"encoding/hex"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/plugins/internal/abi"
)

// TestABIDoc_WorkedExample checks the byte-level example in wasm-sdk/ABI.md
// against the host's encoder and decoder.
func TestABIDoc_WorkedExample(t *testing.T) {
	doc, err := os.ReadFile("../wasm-sdk/ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	view, output := docHex(t, string(doc), "view"), docHex(t, string(doc), "output")

	g := &generation{reqHdr: []string{"X-Tenant-Id"}}
	var in instance
	in.g = g
	r := &Request{Kind: trace.SpanKindServer, Method: "GET", Scheme: "https", Host: "shop", Path: "/cart", Query: "id=1",
		PeerAddr: "10.0.0.1:5555", TraceID: testTraceID, Header: http.Header{"X-Tenant-Id": {"acme"}}}
	encodeRequest(&in.enc, g, r, "")
	if got := hex.EncodeToString(in.enc.b); got != view {
		t.Errorf("view:\ngot  %s\nwant %s", got, view)
	}

	var x Exchange
	out, _ := hex.DecodeString(output)
	if err := applyRequest(out, &x, &keyCache{}); err != nil {
		t.Fatal(err)
	}
	if x.Tenant != "acme" || x.Decision != RecordAndSample || len(x.Attributes) != 1 || x.Attributes[0].Value.AsString() != "acme" {
		t.Errorf("output decoded to %+v", x)
	}
	if got := abi.Pack(0x12000, uint32(len(out))); got != 0x0001200000000022 {
		t.Errorf("packed result %#x", got)
	}
}

// docHex extracts the hex bytes of the ```hex block whose first line is
// "# NAME", ignoring "# ..." comments.
func docHex(t *testing.T, doc, name string) string {
	t.Helper()
	re := regexp.MustCompile("(?s)```hex\n# " + name + "\n(.*?)```")
	m := re.FindStringSubmatch(doc)
	if m == nil {
		t.Fatalf("ABI.md: no ```hex block named %q", name)
	}
	var b strings.Builder
	for _, line := range strings.Split(m[1], "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(strings.ReplaceAll(line, " ", ""))
	}
	return strings.ToLower(b.String())
}
