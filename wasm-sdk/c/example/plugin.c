#include "sidetrace.h"

static st_decision on_request(st_request *r) {
	st_str t;
	if (st_request_get_header(r, ST_STR("x-tenant-id"), &t)) {
		st_request_set_tenant(r, t);
		st_request_set_attribute_string(r, ST_STR("tenant.id"), t);
	}
	return ST_NO_OPINION; /* or ST_DROP, ST_RECORD_ONLY, ST_RECORD_AND_SAMPLE */
}

static void on_response(st_response *r) {
	if (st_response_status(r) >= 500) st_response_keep(r);
}

static void on_span_end(st_span *s) {
	for (uint32_t i = 0; i < st_span_attribute_count(s); i++) {
		st_str key;
		st_value v;
		st_span_attribute(s, i, &key, &v);
		if (st_str_eq(key, ST_STR("enduser.email")))
			st_span_set_attribute_string(s, key, ST_STR("[REDACTED]"));
	}
}

/* Once per instance, with the plugin's "config" JSON (st_json reads it). */
int sidetrace_plugin_init(st_plugin *p, st_str config) {
	(void)config; /* return st_refuse(p, ST_STR("bad config")) to refuse the plugin */
	st_request_header(p, ST_STR("x-tenant-id")); /* sent with every request view */
	st_on_request(p, on_request);
	st_on_response(p, on_response);
	st_on_span_end(p, on_span_end);
	return 0;
}
