//! tenant-sampler in Rust: samples each tenant at its own ratio, decided from the trace id so
//! that every hop agrees, and keeps the spans of 5xx responses. Behaves exactly as the Go
//! version (../main.go); see ../README.md.

use sidetrace::json::{self, Json};
use sidetrace::{Decision, Plugin};

/// The width of the trace id's random part used for consistent probability sampling: the low
/// 56 bits (bytes 9 to 15, big-endian).
const RANDOMNESS_BITS: u32 = 56;
const MAX_THRESHOLD: u64 = 1 << RANDOMNESS_BITS;

/// The rejection threshold T of a ratio: a trace is sampled when its randomness R >= T.
fn threshold(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        return 0;
    }
    if ratio <= 0.0 {
        return MAX_THRESHOLD;
    }
    round((1.0 - ratio) * MAX_THRESHOLD as f64) as u64
}

/// Rounds half away from zero, as Go's math.Round (x >= 0 here).
fn round(x: f64) -> f64 {
    let t = x.trunc();
    if x - t >= 0.5 {
        t + 1.0
    } else {
        t
    }
}

fn randomness(id: &[u8; 16]) -> u64 {
    id[16 - RANDOMNESS_BITS as usize / 8..].iter().fold(0, |r, b| r << 8 | *b as u64)
}

struct Sampler {
    header: String,
    def: u64,
    thresholds: Vec<(String, u64)>, // few tenants: a linear search beats hashing
}

fn check(what: &str, r: f64) -> Result<(), String> {
    if r.is_nan() || r < 0.0 || r > 1.0 {
        return Err(String::from("tenant-sampler: config: ") + what + ": ratio " + &json::format_number(r) + " outside [0, 1]");
    }
    Ok(())
}

fn parse(raw: &[u8]) -> Result<Sampler, String> {
    let bad = |e: String| String::from("tenant-sampler: config: ") + &e;
    let mut header = String::from("x-tenant-id");
    let mut def = 1.0;
    let mut tenants: Vec<(String, f64)> = Vec::new();
    if !raw.is_empty() {
        match json::parse(raw).map_err(bad)? {
            Json::Null => {}
            Json::Object(members) => {
                for (k, v) in members {
                    match (k.to_ascii_lowercase().as_str(), v) {
                        (_, Json::Null) => {}
                        ("header", Json::String(s)) => header = s,
                        ("default", Json::Number(n, _)) => def = n,
                        ("tenants", Json::Object(ts)) => {
                            for (t, r) in ts {
                                let r = match r {
                                    Json::Number(n, _) => n,
                                    Json::Null => 0.0,
                                    other => return Err(bad(String::from("json: cannot unmarshal ") + other.type_name() + " into tenants." + &t + " of type float64")),
                                };
                                match tenants.iter_mut().find(|(n, _)| *n == t) {
                                    Some(e) => e.1 = r,
                                    None => tenants.push((t, r)),
                                }
                            }
                        }
                        ("header", v) | ("default", v) | ("tenants", v) => {
                            return Err(bad(String::from("json: cannot unmarshal ") + v.type_name() + " into field " + &k))
                        }
                        _ => return Err(bad(String::from("json: unknown field \"") + &k + "\"")),
                    }
                }
            }
            v => return Err(bad(String::from("json: cannot unmarshal ") + v.type_name() + " into config")),
        }
    }
    if header.is_empty() {
        return Err("tenant-sampler: config: header: empty".into());
    }
    check("default", def)?;
    let mut s = Sampler { header, def: threshold(def), thresholds: Vec::new() };
    for (t, r) in tenants {
        check(&(String::from("tenants.") + &t), r)?;
        s.thresholds.push((t, threshold(r)));
    }
    Ok(s)
}

fn init(p: &mut Plugin) -> Result<(), String> {
    let s = parse(p.config())?;
    p.request_headers(&[&s.header]);
    p.on_request(move |r| {
        let mut th = s.def;
        if let Some(tenant) = r.header(&s.header).filter(|t| !t.is_empty()) {
            r.set_tenant(&tenant);
            r.set_attribute("tenant.id", &*tenant);
            if let Some((_, t)) = s.thresholds.iter().find(|(n, _)| *n == *tenant) {
                th = *t;
            }
        }
        if randomness(&r.trace_id()) >= th {
            Decision::RecordAndSample
        } else {
            // Not sampled, but recorded: the response hook keeps it if it fails.
            Decision::RecordOnly
        }
    });
    p.on_response(|r| {
        if r.status() >= 500 {
            r.keep();
        }
    });
    Ok(())
}

sidetrace::plugin!(init);
