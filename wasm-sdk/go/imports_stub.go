//go:build !wasip1

package sdk

import "strings"

// Outside wasip1 the host imports are stubs, so that plugins compile and
// unit-test natively; Test drives the hooks.

var stub struct {
	logs    []string
	headers [2]map[string]string // by abi.HeaderRequest, abi.HeaderResponse; lower-case names
}

func hostLog(level int32, msg string) { stub.logs = append(stub.logs, msg) }

func hostGetHeader(which int32, name string) (string, bool) {
	if which < 0 || which > 1 || stub.headers[which] == nil {
		return "", false
	}
	v, ok := stub.headers[which][strings.ToLower(name)]
	return v, ok
}
