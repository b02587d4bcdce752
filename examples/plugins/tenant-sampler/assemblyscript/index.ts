// tenant-sampler in AssemblyScript: samples each tenant at its own ratio, decided from the
// trace id so that every hop agrees, and keeps the spans of 5xx responses. Behaves exactly as
// the Go version (../main.go); see ../README.md.

export * from "../../../../wasm-sdk/assemblyscript/assembly/exports";
import {
  Decision,
  JsonKind,
  JsonValue,
  Plugin,
  Request,
  Response,
  Value,
  asciiLower,
  jsonError,
  parseJson,
  sidetrace,
} from "../../../../wasm-sdk/assemblyscript/assembly/index";

// The low 56 bits of the trace id (bytes 9 to 15, big-endian) are its randomness R.
const RANDOMNESS_BITS: i32 = 56;
const MAX_THRESHOLD: u64 = (<u64>1) << RANDOMNESS_BITS;

let header = "x-tenant-id";
let defThreshold: u64 = 0;
let names: string[] = [];
let thresholds: u64[] = [];

/** The rejection threshold T of a ratio: a trace is sampled when R >= T. */
function threshold(ratio: f64): u64 {
  if (ratio >= 1) return 0;
  if (ratio <= 0) return MAX_THRESHOLD;
  const x = (1 - ratio) * <f64>MAX_THRESHOLD;
  const t = Math.trunc(x); // round half away from zero, as Go's math.Round
  return <u64>(x - t >= 0.5 ? t + 1 : t);
}

function randomness(r: Request): u64 {
  let v: u64 = 0;
  for (let i = 16 - RANDOMNESS_BITS / 8; i < 16; i++) v = (v << 8) | <u64>r.traceIdByte(i);
  return v;
}

/** Formats a ratio as Go's %v does for usual values: "2", "-1", "1.5". */
function formatNumber(f: f64): string {
  if (isNaN(f)) return "NaN";
  let s = "";
  if (f < 0) {
    s = "-";
    f = -f;
  }
  if (f >= 1e18) return s + "+Inf";
  const i = <u64>f;
  s += i.toString();
  let frac = <u64>((f - <f64>i) * 1e9 + 0.5);
  if (frac >= 1000000000) frac = 999999999;
  if (frac == 0) return s;
  let d = frac.toString();
  while (d.length < 9) d = "0" + d;
  while (d.endsWith("0")) d = d.substring(0, d.length - 1);
  return s + "." + d;
}

const PREFIX = "tenant-sampler: config: ";

function ratioError(what: string, r: f64): string | null {
  if (!isNaN(r) && r >= 0 && r <= 1) return null;
  return PREFIX + what + ": ratio " + formatNumber(r) + " outside [0, 1]";
}

/** parse reads the config and returns an error message, or null. */
function parse(raw: string): string | null {
  header = "x-tenant-id";
  names = [];
  thresholds = [];
  let def: f64 = 1;
  const ratios: f64[] = [];
  if (raw.length > 0) {
    const c = parseJson(raw);
    if (c == null) return PREFIX + jsonError();
    if (c.kind == JsonKind.Object) {
      for (let i = 0; i < c.keys.length; i++) {
        const k = asciiLower(c.keys[i]);
        const v = c.items[i];
        if (k != "header" && k != "default" && k != "tenants") return PREFIX + 'json: unknown field "' + c.keys[i] + '"';
        if (v.kind == JsonKind.Null) continue;
        if (k == "header") {
          if (v.kind != JsonKind.String) return PREFIX + "json: cannot unmarshal " + v.typeName() + " into field header of type string";
          header = v.str;
        } else if (k == "default") {
          if (v.kind != JsonKind.Number) return PREFIX + "json: cannot unmarshal " + v.typeName() + " into field default of type float64";
          def = v.num;
        } else {
          if (v.kind != JsonKind.Object) return PREFIX + "json: cannot unmarshal " + v.typeName() + " into field tenants";
          for (let t = 0; t < v.keys.length; t++) {
            const r = v.items[t];
            if (r.kind != JsonKind.Number && r.kind != JsonKind.Null) {
              return PREFIX + "json: cannot unmarshal " + r.typeName() + " into tenants." + v.keys[t] + " of type float64";
            }
            const j = names.indexOf(v.keys[t]);
            if (j >= 0) ratios[j] = r.num;
            else {
              names.push(v.keys[t]);
              ratios.push(r.num);
            }
          }
        }
      }
    } else if (c.kind != JsonKind.Null) {
      return PREFIX + "json: cannot unmarshal " + c.typeName() + " into config";
    }
  }
  if (header.length == 0) return PREFIX + "header: empty";
  const e = ratioError("default", def);
  if (e != null) return e;
  defThreshold = threshold(def);
  for (let i = 0; i < names.length; i++) {
    const te = ratioError("tenants." + names[i], ratios[i]);
    if (te != null) return te;
    thresholds.push(threshold(ratios[i]));
  }
  return null;
}

function onRequest(r: Request): Decision {
  let th = defThreshold;
  const tenant = r.header(header);
  if (tenant != null && tenant.length > 0) {
    r.setTenant(tenant);
    r.setAttribute("tenant.id", Value.string(tenant));
    const i = names.indexOf(tenant);
    if (i >= 0) th = thresholds[i];
  }
  if (randomness(r) >= th) return Decision.RecordAndSample;
  return Decision.RecordOnly; // recorded: the response hook keeps it if it fails
}

function onResponse(r: Response): void {
  if (r.status() >= 500) r.keep();
}

function init(p: Plugin): void {
  const err = parse(p.config);
  if (err != null) {
    p.refuse(err);
    return;
  }
  p.requestHeaders([header]);
  p.onRequest(onRequest);
  p.onResponse(onResponse);
}

sidetrace(init);
