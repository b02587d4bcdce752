package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/sidetrace/sidetrace/internal/otlptest"
	"github.com/sidetrace/sidetrace/internal/sidecartest"
)

// testService implements the four kinds of gRPC call, and fails on request.
type testService struct {
	testpb.UnimplementedTestServiceServer
}

func (testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if req.GetResponseStatus().GetCode() != 0 {
		return nil, status.Error(codes.Code(req.GetResponseStatus().GetCode()), req.GetResponseStatus().GetMessage())
	}
	md, _ := metadata.FromIncomingContext(ctx)
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "kept"))
	return &testpb.SimpleResponse{Username: firstOf(md.Get("traceparent"))}, nil
}

func (testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	for _, p := range req.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (testService) StreamingInputCall(stream grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	total := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(req.GetPayload().GetBody())
	}
}

func (testService) FullDuplexCall(stream grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		size := req.GetResponseParameters()[0].GetSize()
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, size)}}); err != nil {
			return err
		}
	}
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// gRPC through the inbound hop: unary and all three streaming kinds, trailers and grpc-status intact, with
// rpc.* attributes on the spans.
func TestInbound_GRPC_AllCallKinds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, testService{})
	go srv.Serve(ln)
	defer srv.Stop()

	rcv := otlptest.NewReceiver(t)
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM=http://"+ln.Addr().String(), "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.Endpoint())
	conn, err := grpc.NewClient(sc.Addr("inbound"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := testpb.NewTestServiceClient(conn)
	ctx := context.Background()

	t.Run("unary", func(t *testing.T) {
		var trailer metadata.MD
		res, err := c.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
		if err != nil {
			t.Fatal(err)
		}
		if res.GetUsername() == "" {
			t.Error("the upstream saw no traceparent")
		}
		if got := firstOf(trailer.Get("x-trailer")); got != "kept" {
			t.Errorf("trailer x-trailer: got %q; want %q", got, "kept")
		}
	})
	t.Run("unary error status", func(t *testing.T) {
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such order"}})
		if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "no such order" {
			t.Errorf("got %v; want NotFound %q", err, "no such order")
		}
		_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Internal), Message: "boom"}})
		if st, _ := status.FromError(err); st.Code() != codes.Internal {
			t.Errorf("got %v; want Internal", err)
		}
	})
	t.Run("server streaming", func(t *testing.T) {
		stream, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 10}, {Size: 20}, {Size: 30}}})
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(m.GetPayload().GetBody()))
		}
		if len(sizes) != 3 || sizes[2] != 30 {
			t.Errorf("got sizes %v; want [10 20 30]", sizes)
		}
	})
	t.Run("client streaming", func(t *testing.T) {
		stream, err := c.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{100, 200, 300} {
			if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, n)}}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := stream.CloseAndRecv()
		if err != nil || res.GetAggregatedPayloadSize() != 600 {
			t.Errorf("got %v, %v; want 600", res.GetAggregatedPayloadSize(), err)
		}
	})
	t.Run("bidi streaming", func(t *testing.T) {
		stream, err := c.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each reply is read before the next request is sent: the proxy must carry both directions at once.
		for _, n := range []int32{7, 70, 700} {
			if err := stream.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: n}}}); err != nil {
				t.Fatal(err)
			}
			m, err := stream.Recv()
			if err != nil || int32(len(m.GetPayload().GetBody())) != n {
				t.Fatalf("reply: got %d bytes, %v; want %d", len(m.GetPayload().GetBody()), err, n)
			}
		}
		stream.CloseSend()
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("end of stream: got %v; want EOF", err)
		}
	})

	spans := rcv.WaitSpans(t, 6, wait)
	byMethod := map[string][]otlptest.Span{}
	for _, s := range spans {
		if s.Kind != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("span kind: got %v; want SERVER", s.Kind)
		}
		m, _ := s.Attrs["rpc.method"].(string)
		byMethod[m] = append(byMethod[m], s)
		if s.Attrs["rpc.system.name"] != "grpc" || s.Name != m {
			t.Errorf("span %q: rpc.system.name %v, rpc.method %q; want grpc and the span named after the method", s.Name, s.Attrs["rpc.system.name"], m)
		}
	}
	const svc = "grpc.testing.TestService/"
	unary := byMethod[svc+"UnaryCall"]
	if len(unary) != 3 {
		t.Fatalf("UnaryCall spans: got %d; want 3:%s", len(unary), otlptest.Summary(spans))
	}
	codesSeen := map[string]tracepb.Status_StatusCode{}
	for _, s := range unary {
		codesSeen[s.Attrs["rpc.response.status_code"].(string)] = s.StatusCode
	}
	want := map[string]tracepb.Status_StatusCode{
		"OK":        tracepb.Status_STATUS_CODE_UNSET,
		"NOT_FOUND": tracepb.Status_STATUS_CODE_UNSET, // not a server error per the gRPC conventions
		"INTERNAL":  tracepb.Status_STATUS_CODE_ERROR,
	}
	for code, st := range want {
		if got, ok := codesSeen[code]; !ok || got != st {
			t.Errorf("UnaryCall %s: span status %v (seen %v); want %v", code, got, ok, st)
		}
	}
	for _, m := range []string{"StreamingOutputCall", "StreamingInputCall", "FullDuplexCall"} {
		ss := byMethod[svc+m]
		if len(ss) != 1 || ss[0].Attrs["rpc.response.status_code"] != "OK" || ss[0].Attrs["sidetrace.outcome"] != "completed" {
			t.Errorf("%s spans: %s", m, otlptest.Summary(ss))
		}
	}
}

// gRPC to an upstream that is down answers UNAVAILABLE, as gRPC clients expect.
func TestInbound_GRPC_UpstreamDown_Unavailable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	sc := sidecartest.Start(t, "SIDETRACE_UPSTREAM=http://"+addr)
	conn, err := grpc.NewClient(sc.Addr("inbound"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = testpb.NewTestServiceClient(conn).UnaryCall(context.Background(), &testpb.SimpleRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable {
		t.Errorf("got %v; want Unavailable", err)
	}
}
