use sidetrace::{Decision, Plugin};

fn init(p: &mut Plugin) -> Result<(), String> {
    // p.config(): the plugin's "config" JSON, once per instance (sidetrace::json reads it)
    p.request_headers(&["x-tenant-id"]); // sent with every request view
    p.on_request(|r| {
        if let Some(t) = r.header("x-tenant-id") {
            r.set_tenant(&t);
            r.set_attribute("tenant.id", &*t);
        }
        Decision::NoOpinion // or Drop, RecordOnly, RecordAndSample
    });
    p.on_response(|r| {
        if r.status() >= 500 {
            r.keep();
        }
    });
    p.on_span_end(|s| {
        if s.attribute("enduser.email").is_some() {
            s.set_attribute("enduser.email", "[REDACTED]");
        }
    });
    Ok(())
}

sidetrace::plugin!(init);
