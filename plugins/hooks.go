package plugins

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"

	"github.com/sidetrace/sidetrace/plugins/internal/abi"
)

// OnRequest runs every plugin's request hook in chain order and records what
// they asked for in x. It returns a non-nil error, wrapping ErrRefused and
// naming the plugin, only when a fail-closed plugin failed: the proxy then
// answers 503. Fail-open failures are appended to x.Errors.
func (h *Host) OnRequest(ctx context.Context, r *Request, x *Exchange) error {
	if h == nil {
		return nil
	}
	if !x.pin(h) {
		return nil
	}
	x.kind, x.trace = r.Kind, r.TraceID
	return x.run(abi.HookRequest, func(g *generation) error { return g.onRequest(ctx, r, x) })
}

// OnResponse runs every plugin's response hook in chain order, on the
// generations pinned by OnRequest, then releases the pin. Errors are as for
// OnRequest.
func (h *Host) OnResponse(ctx context.Context, r *Response, x *Exchange) error {
	if h == nil {
		return nil
	}
	if !x.pin(h) {
		return nil
	}
	defer x.release()
	return x.run(abi.HookResponse, func(g *generation) error { return g.onResponse(ctx, r, x) })
}

// pin pins h's current chain for the exchange, unless OnRequest already did; false means no plugins.
func (x *Exchange) pin(h *Host) bool {
	if x.chain == nil {
		x.chain = h.pin()
	}
	return x.chain != nil
}

// run calls hook on each generation of the pinned chain that implements the hook, in chain order; it
// stops at the first fail-closed failure, whose error it returns.
func (x *Exchange) run(hook uint32, call func(g *generation) error) error {
	for _, g := range x.chain.gens {
		if g.hooks&hook == 0 {
			continue
		}
		if err := call(g); err != nil {
			if err := x.fail(g, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// fail records a hook failure: an error to return for fail-closed plugins,
// an entry in x.Errors for fail-open ones.
func (x *Exchange) fail(g *generation, err error) error {
	name := g.p.spec.Name
	if g.p.spec.failClosed() {
		return fmt.Errorf("%w: %s: %v", ErrRefused, name, err)
	}
	x.Errors = append(x.Errors, name+": "+err.Error())
	return nil
}

// finish returns an instance after a call, or discards it if the failure
// requires; it returns err.
func (g *generation) finish(in *instance, err error) error {
	if err != nil && g.p.count(err) {
		g.pool.drop(in)
		return err
	}
	g.pool.put(in)
	return err
}

func (g *generation) onRequest(ctx context.Context, r *Request, x *Exchange) error {
	in, err := g.pool.get(ctx)
	if err != nil {
		return err
	}
	g.p.calls.Add(1)
	in.req = r
	in.enc.reset()
	encodeRequest(&in.enc, g, r, x.Tenant)
	out, err := in.hook(0)
	if err == nil {
		err = applyRequest(out, x, &in.keys)
	}
	return g.finish(in, err)
}

// encodeRequest writes a request view (ABI.md, "Request view").
func encodeRequest(e *encoder, g *generation, r *Request, tenant string) {
	e.u8(uint8(r.Kind))
	e.raw(r.TraceID[:])
	e.str(r.Method)
	e.str(r.Scheme)
	e.str(r.Host)
	e.str(r.Path)
	e.str(r.Query)
	e.str(r.PeerAddr)
	e.str(tenant)
	for _, name := range g.reqHdr {
		e.strs(r.Header[name])
	}
}

func applyRequest(out []byte, x *Exchange, keys *keyCache) error {
	n, tenant, decision := len(x.Attributes), x.Tenant, x.Decision
	d := decoder{b: out}
	var err error
	for !d.done() && err == nil {
		switch op := d.u8(); op {
		case abi.OpSetAttr:
			kv := attribute.KeyValue{Key: d.key(keys), Value: d.value()}
			if d.err == nil && kv.Key == "" {
				err = malformed("empty attribute key")
			}
			x.Attributes = append(x.Attributes, kv)
		case abi.OpSetTenant:
			x.Tenant = d.str()
		case abi.OpDecision:
			v := d.u8()
			if v > abi.DecisionRecordAndSample {
				err = malformed(fmt.Sprintf("unknown decision %d", v))
			} else if v != abi.DecisionNoOpinion {
				x.Decision = Decision(v)
			}
		case abi.OpFail:
			err = d.reportedFailure()
		default:
			err = malformed(fmt.Sprintf("op %#x not allowed in the request hook", op))
		}
	}
	err = d.result(err)
	if err != nil { // a failed call edits nothing
		clear(x.Attributes[n:])
		x.Attributes, x.Tenant, x.Decision = x.Attributes[:n], tenant, decision
	}
	return err
}

func (g *generation) onResponse(ctx context.Context, r *Response, x *Exchange) error {
	in, err := g.pool.get(ctx)
	if err != nil {
		return err
	}
	g.p.calls.Add(1)
	in.resp = r
	e := &in.enc
	e.reset()
	e.u8(uint8(x.kind))
	e.raw(x.trace[:])
	e.str(x.Tenant)
	e.u32(uint32(r.Status))
	e.u64(uint64(max(r.Duration, 0)))
	for _, name := range g.respHdr {
		e.strs(r.Header[name])
	}
	out, err := in.hook(1)
	if err == nil {
		err = applyResponse(out, x, &in.keys)
	}
	return g.finish(in, err)
}

func applyResponse(out []byte, x *Exchange, keys *keyCache) error {
	n, markErr, desc, keep := len(x.Attributes), x.MarkError, x.ErrorDesc, x.Keep
	d := decoder{b: out}
	var err error
	for !d.done() && err == nil {
		switch op := d.u8(); op {
		case abi.OpSetAttr:
			kv := attribute.KeyValue{Key: d.key(keys), Value: d.value()}
			if d.err == nil && kv.Key == "" {
				err = malformed("empty attribute key")
			}
			x.Attributes = append(x.Attributes, kv)
		case abi.OpMarkError:
			x.MarkError, x.ErrorDesc = true, d.str()
		case abi.OpKeep:
			x.Keep = true
		case abi.OpFail:
			err = d.reportedFailure()
		default:
			err = malformed(fmt.Sprintf("op %#x not allowed in the response hook", op))
		}
	}
	err = d.result(err)
	if err != nil {
		clear(x.Attributes[n:])
		x.Attributes, x.MarkError, x.ErrorDesc, x.Keep = x.Attributes[:n], markErr, desc, keep
	}
	return err
}

func malformed(msg string) error {
	return &callError{kind: failMalformed, msg: "malformed result: " + msg}
}
