//go:build !wasip1

package main

import (
	"reflect"
	"testing"

	sdk "github.com/sidetrace/sidetrace/wasm-sdk/go"
)

func TestCustomAttributes(t *testing.T) {
	d, err := sdk.RunInit(`{"headers":{"x-user-agent-class":"app.client_class","x-region":"app.region"},"static":{"deployment.environment":"prod","app.shard":3,"app.canary":true}}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x-region", "x-user-agent-class"}; !reflect.DeepEqual(d.RequestHeaders, want) {
		t.Errorf("declared %q; want %q", d.RequestHeaders, want)
	}
	res := sdk.RunRequest(sdk.TestRequest{Header: map[string][]string{"X-User-Agent-Class": {"mobile"}}})
	want := []sdk.Attribute{
		{Key: "app.client_class", Value: sdk.String("mobile")},
		{Key: "app.canary", Value: sdk.Bool(true)},
		{Key: "app.shard", Value: sdk.Int64(3)},
		{Key: "deployment.environment", Value: sdk.String("prod")},
	}
	if !reflect.DeepEqual(res.Attributes, want) {
		t.Errorf("got %+v; want %+v", res.Attributes, want)
	}
	if res.Decision != sdk.NoOpinion {
		t.Errorf("decision %v; want NoOpinion", res.Decision)
	}
}

func TestCustomAttributes_BadConfig(t *testing.T) {
	for _, c := range []string{`{"static":{"a":[1]}}`, `{"headers":{"x":""}}`, `{"other":1}`} {
		if _, err := sdk.RunInit(c); err == nil {
			t.Errorf("%s: got nil error", c)
		}
	}
}
