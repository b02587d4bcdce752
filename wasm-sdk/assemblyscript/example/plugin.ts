export * from "../assembly/exports"; // the ABI's exports
import { Decision, Plugin, Request, Response, Span, Value, sidetrace } from "../assembly";

function onRequest(r: Request): Decision {
  const t = r.header("x-tenant-id");
  if (t != null) {
    r.setTenant(t);
    r.setAttribute("tenant.id", Value.string(t));
  }
  return Decision.NoOpinion; // or Drop, RecordOnly, RecordAndSample
}

function onResponse(r: Response): void {
  if (r.status() >= 500) r.keep();
}

function onSpanEnd(s: Span): void {
  if (s.attribute("enduser.email") != null) s.setAttribute("enduser.email", Value.string("[REDACTED]"));
}

// Once per instance; p.config is the plugin's "config" JSON (parseJson reads it).
function init(p: Plugin): void {
  p.requestHeaders(["x-tenant-id"]); // sent with every request view
  p.onRequest(onRequest); // hooks are top-level functions: AssemblyScript has no closures
  p.onResponse(onResponse);
  p.onSpanEnd(onSpanEnd);
}

sidetrace(init);
