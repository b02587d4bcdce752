/*
 * tenant-sampler in C: samples each tenant at its own ratio, decided from the trace id so
 * that every hop agrees, and keeps the spans of 5xx responses. Behaves exactly as the Go
 * version (../main.go); see ../README.md.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sidetrace.h"

/* The low 56 bits of the trace id (bytes 9 to 15, big-endian) are its randomness R. */
#define RANDOMNESS_BITS 56
#define MAX_THRESHOLD ((uint64_t)1 << RANDOMNESS_BITS)

typedef struct {
	st_str name;
	uint64_t threshold;
} tenant;

static st_str header;
static uint64_t def_threshold;
static tenant *tenants;
static size_t n_tenants;

/* threshold returns the rejection threshold T of a ratio: sampled when R >= T. */
static uint64_t threshold(double ratio) {
	if (ratio >= 1) return 0;
	if (ratio <= 0) return MAX_THRESHOLD;
	double x = (1 - ratio) * (double)MAX_THRESHOLD;
	double t = trunc(x); /* round half away from zero, as Go's math.Round */
	return (uint64_t)(x - t >= 0.5 ? t + 1 : t);
}

static uint64_t randomness(const uint8_t *id) {
	uint64_t r = 0;
	for (int i = 16 - RANDOMNESS_BITS / 8; i < 16; i++) r = r << 8 | id[i];
	return r;
}

/* Error messages are built without printf, which would triple the module's size. */
static char msg[512];
static size_t msg_len;

static void add(st_str s) {
	size_t n = s.len < sizeof msg - msg_len ? s.len : sizeof msg - msg_len;
	memcpy(msg + msg_len, s.ptr, n);
	msg_len += n;
}

static void add_uint(uint64_t v) {
	char d[20];
	int n = 0;
	do d[n++] = (char)('0' + v % 10); while (v /= 10);
	while (n) add((st_str){&d[--n], 1});
}

/* add_number writes a ratio as Go's %v does for usual values: "2", "-1", "1.5". */
static void add_number(double f) {
	if (isnan(f)) return add(ST_STR("NaN"));
	if (f < 0) add(ST_STR("-")), f = -f;
	if (f >= 1e18) return add(ST_STR("+Inf"));
	uint64_t i = (uint64_t)f;
	add_uint(i);
	uint64_t frac = (uint64_t)((f - (double)i) * 1e9 + 0.5);
	if (frac >= 1000000000) frac = 999999999;
	if (!frac) return;
	char d[10] = ".";
	for (int k = 9; k >= 1; k--) d[k] = (char)('0' + frac % 10), frac /= 10;
	int n = 10;
	while (d[n - 1] == '0') n--;
	add((st_str){d, (size_t)n});
}

static int refuse3(st_plugin *p, st_str a, st_str b, st_str c) {
	msg_len = 0;
	add(ST_STR("tenant-sampler: config: ")), add(a), add(b), add(c);
	return st_refuse(p, (st_str){msg, msg_len});
}

static int refuse(st_plugin *p, const char *what) { return refuse3(p, st_cstr(what), ST_STR(""), ST_STR("")); }

/* check refuses a ratio outside [0, 1]. */
static int check(st_plugin *p, st_str prefix, st_str name, double r) {
	if (!isnan(r) && r >= 0 && r <= 1) return 0;
	msg_len = 0;
	add(ST_STR("tenant-sampler: config: ")), add(prefix), add(name), add(ST_STR(": ratio "));
	add_number(r);
	add(ST_STR(" outside [0, 1]"));
	return st_refuse(p, (st_str){msg, msg_len});
}

static int lower_eq(st_str a, const char *b) { return st_str_eq_fold(a, st_cstr(b)); }

static int parse_tenants(st_plugin *p, st_json *j) {
	if (st_json_peek(j) == ST_JSON_NULL) return st_json_null(j);
	if (st_json_peek(j) != ST_JSON_OBJECT) return refuse(p, "json: cannot unmarshal into field tenants");
	st_json_object(j);
	st_str name;
	int k;
	while ((k = st_json_member(j, &name)) == 1) {
		double r = 0;
		st_json_type t = st_json_peek(j);
		if (t == ST_JSON_NULL) st_json_null(j);
		else if (t == ST_JSON_NUMBER) {
			if (st_json_number(j, &r) < 0) return refuse(p, j->err);
		} else if (t == ST_JSON_ERROR) return refuse(p, j->err);
		else return refuse(p, "json: cannot unmarshal into tenants of type float64");
		size_t i = 0;
		while (i < n_tenants && !st_str_eq(tenants[i].name, name)) i++;
		if (i == n_tenants) {
			tenant *nt = realloc(tenants, (n_tenants + 1) * sizeof *tenants);
			if (!nt) return refuse(p, "out of memory");
			tenants = nt, n_tenants++;
			tenants[i].name = name;
		} else {
			free((void *)name.ptr);
		}
		memcpy(&tenants[i].threshold, &r, sizeof r); /* the ratio, until checked */
	}
	return k < 0 ? refuse(p, j->err) : 0;
}

static int parse(st_plugin *p, st_str raw) {
	header = ST_STR("x-tenant-id");
	double def = 1;
	if (raw.len > 0) {
		st_json j;
		st_json_begin(&j, raw);
		st_json_type t = st_json_peek(&j);
		if (t == ST_JSON_ERROR) return refuse(p, j.err);
		if (t == ST_JSON_NULL) {
			if (st_json_null(&j) < 0) return refuse(p, j.err);
		} else if (t != ST_JSON_OBJECT) {
			return refuse(p, "json: cannot unmarshal into config");
		} else {
			st_json_object(&j);
			st_str key;
			int k;
			while ((k = st_json_member(&j, &key)) == 1) {
				st_json_type vt = st_json_peek(&j);
				if (vt == ST_JSON_ERROR) return refuse(p, j.err);
				if (lower_eq(key, "header")) {
					if (vt == ST_JSON_STRING) {
						if (st_json_string(&j, &header) < 0) return refuse(p, j.err);
					} else if (vt == ST_JSON_NULL) st_json_null(&j);
					else return refuse(p, "json: cannot unmarshal into field header of type string");
				} else if (lower_eq(key, "default")) {
					if (vt == ST_JSON_NUMBER) {
						if (st_json_number(&j, &def) < 0) return refuse(p, j.err);
					} else if (vt == ST_JSON_NULL) st_json_null(&j);
					else return refuse(p, "json: cannot unmarshal into field default of type float64");
				} else if (lower_eq(key, "tenants")) {
					if (parse_tenants(p, &j) != 0) return -1;
				} else {
					return refuse3(p, ST_STR("json: unknown field \""), key, ST_STR("\""));
				}
				free((void *)key.ptr);
			}
			if (k < 0) return refuse(p, j.err);
		}
	}
	if (header.len == 0) return refuse(p, "header: empty");
	if (check(p, ST_STR("default"), ST_STR(""), def)) return -1;
	def_threshold = threshold(def);
	for (size_t i = 0; i < n_tenants; i++) {
		double r;
		memcpy(&r, &tenants[i].threshold, sizeof r);
		if (check(p, ST_STR("tenants."), tenants[i].name, r)) return -1;
		tenants[i].threshold = threshold(r);
	}
	return 0;
}

static st_decision on_request(st_request *r) {
	uint64_t th = def_threshold;
	st_str t;
	if (st_request_get_header(r, header, &t) && t.len > 0) {
		st_request_set_tenant(r, t);
		st_request_set_attribute_string(r, ST_STR("tenant.id"), t);
		for (size_t i = 0; i < n_tenants; i++)
			if (st_str_eq(tenants[i].name, t)) th = tenants[i].threshold;
	}
	if (randomness(st_request_trace_id(r)) >= th) return ST_RECORD_AND_SAMPLE;
	return ST_RECORD_ONLY; /* recorded: the response hook keeps it if it fails */
}

static void on_response(st_response *r) {
	if (st_response_status(r) >= 500) st_response_keep(r);
}

int sidetrace_plugin_init(st_plugin *p, st_str config) {
	if (parse(p, config) != 0) return -1;
	st_request_header(p, header);
	st_on_request(p, on_request);
	st_on_response(p, on_response);
	return 0;
}
