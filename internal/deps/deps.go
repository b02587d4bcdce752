//go:build tools

// Package deps pins the modules sidetrace builds on until the packages that import them land.
package deps

import (
	_ "github.com/caarlos0/env/v11"
	_ "github.com/tetratelabs/wazero"
	_ "go.opentelemetry.io/contrib/propagators/aws/xray"
	_ "go.opentelemetry.io/contrib/propagators/b3"
	_ "go.opentelemetry.io/contrib/propagators/jaeger"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	_ "go.opentelemetry.io/otel/sdk"
	_ "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	_ "golang.org/x/net/http2"
	_ "golang.org/x/net/websocket"
	_ "google.golang.org/grpc"
	_ "google.golang.org/grpc/interop/grpc_testing"
)
