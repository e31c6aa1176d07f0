/* test_api.c - the HTTP API against a real node: a data dir in /tmp, the
 * echo VM, libmicrohttpd on a loopback port chosen by the kernel, and
 * libcurl as the client. Items are signed here with fresh secp256k1 keys.
 *
 * Also unit tests of the request parser (src/api/route.c) on its own. */
#include "testutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <unistd.h>

#include "api/api.h"
#include "api/route.h"
#include "common/enc.h"
#include "common/log.h"
#include "item/item.h"
#include "node/node.h"
#include "vm/vm.h"

#define MAX_ITEM 65536

typedef struct fixture {
  char dir[64];
  config cfg;
  node *n;
  api *a;
  item_key *user;  /* signs modules, processes, messages */
  item_key *other; /* a peer node's key: its address is in the config's peers */
  char base[64];   /* http://127.0.0.1:<port> */
  char mid[ITEM_ID_LEN + 1];
  char pid[ITEM_ID_LEN + 1];
} fixture;

static fixture F;

/* ---- HTTP client ---- */

typedef struct hres {
  long status;
  char *body;
  size_t len;
  char *hdr;
  size_t hlen;
  curl_off_t uploaded; /* request body bytes curl actually sent */
} hres;

typedef struct buf {
  char *p;
  size_t n;
} buf;

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
  buf *b = ud;
  char *x = realloc(b->p, b->n + sz * n + 1);
  if (!x) return 0;
  memcpy(x + b->n, p, sz * n);
  b->n += sz * n;
  x[b->n] = 0;
  b->p = x;
  return sz * n;
}

typedef struct chunked_src {
  size_t left;
} chunked_src;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud) {
  chunked_src *c = ud;
  size_t k = sz * n < c->left ? sz * n : c->left;
  memset(buf, 'x', k);
  c->left -= k;
  return k;
}

/* method + path (relative to the node) + optional body; chunked_len > 0
 * sends that many bytes with Transfer-Encoding: chunked instead. */
static hres http_ex(const char *method, const char *path, const void *body, size_t len,
                    size_t chunked_len) {
  hres r = {0};
  buf b = {0}, h = {0};
  char url[2048];
  snprintf(url, sizeof url, "%s%s", F.base, path);
  CURL *c = curl_easy_init();
  assert_non_null(c);
  struct curl_slist *hl = NULL;
  chunked_src src = {.left = chunked_len};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  if (chunked_len) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
    hl = curl_slist_append(hl, "Content-Type: application/octet-stream");
  } else if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    hl = curl_slist_append(hl, "Content-Type: application/octet-stream");
  }
  if (strcmp(method, "GET") && strcmp(method, "POST"))
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  else if (!strcmp(method, "POST") && !body && !chunked_len)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  if (!strcmp(method, "HEAD")) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (hl) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &r.uploaded);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  r.body = b.p ? b.p : strdup("");
  r.len = b.n;
  r.hdr = h.p ? h.p : strdup("");
  r.hlen = h.n;
  return r;
}

static hres http(const char *method, const char *path, const void *body, size_t len) {
  return http_ex(method, path, body, len, 0);
}

static void hres_free(hres *r) {
  free(r->body);
  free(r->hdr);
}

/* The body as JSON, or fail. */
static json_t *jbody(const hres *r) {
  json_error_t je;
  json_t *j = json_loadb(r->body, r->len, JSON_DECODE_ANY, &je);
  if (!j) fail_msg("not JSON (%s): %.300s", je.text, r->body);
  return j;
}

/* GET path, expect status, return the JSON body (caller decrefs). */
static json_t *get_json(const char *path, long status) {
  hres r = http("GET", path, NULL, 0);
  if (r.status != status)
    fail_msg("GET %s: want %ld, got %ld: %.300s", path, status, r.status, r.body);
  json_t *j = jbody(&r);
  hres_free(&r);
  return j;
}

/* Expect {"error": code} with this status. */
static void expect_error(hres *r, long status, const char *code) {
  if (r->status != status)
    fail_msg("want %ld %s, got %ld: %.300s", status, code, r->status, r->body);
  json_t *j = jbody(r);
  const char *got = json_string_value(json_object_get(j, "error"));
  if (!got || strcmp(got, code)) fail_msg("want error %s, got %.300s", code, r->body);
  json_decref(j);
}

static int has_header(const hres *r, const char *needle) {
  return strcasestr(r->hdr, needle) != NULL;
}

/* ---- items ---- */

static uint8_t *make_item(const item_key *k, const char *target, const char *const *tags,
                          const char *data, size_t *len, char id[ITEM_ID_LEN + 1]) {
  vn_err e = {0};
  item *it = item_new();
  if (target) assert_int_equal(item_set_target_b64(it, target, &e), 0);
  for (size_t i = 0; tags && tags[i]; i += 2)
    assert_int_equal(item_add_tag(it, tags[i], tags[i + 1], &e), 0);
  if (data) item_set_data(it, (const uint8_t *)data, strlen(data));
  if (item_sign(it, k, &e)) fail_msg("item_sign: %s", e.msg);
  uint8_t *raw = item_encode(it, len, &e);
  if (!raw) fail_msg("item_encode: %s", e.msg);
  if (id) strcpy(id, it->id);
  item_free(it);
  return raw;
}

static uint8_t *make_message(const char *pid, const char *data, const char *extra_name,
                             const char *extra_value, size_t *len, char id[ITEM_ID_LEN + 1]) {
  const char *tags[] = {"Data-Protocol", "hymx", "Variant",  "v0.1.0",    "Type", "Message",
                        "Action",        "Ping", extra_name, extra_value, NULL};
  return make_item(F.user, pid, tags, data, len, id);
}

/* POST / and expect 200 with the item id. */
static void submit_ok(const uint8_t *raw, size_t len, const char *id) {
  hres r = http("POST", "/", raw, len);
  if (r.status != 200) fail_msg("POST /: %ld %.300s", r.status, r.body);
  json_t *j = jbody(&r);
  assert_string_equal(json_string_value(json_object_get(j, "id")), id);
  assert_string_equal(json_string_value(json_object_get(j, "message")), "");
  json_decref(j);
  hres_free(&r);
}

/* Send a message, wait for its result, return the result JSON. */
static json_t *send_and_wait(const char *data, char id[ITEM_ID_LEN + 1]) {
  size_t len;
  uint8_t *raw = make_message(F.pid, data, NULL, NULL, &len, id);
  submit_ok(raw, len, id);
  free(raw);
  char path[160];
  snprintf(path, sizeof path, "/result/%s", id);
  return get_json(path, 200);
}

/* ---- fixture ---- */

static int setup(void **state) {
  (void)state;
  log_init(NULL, "error", NULL, NULL);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  vm_register_builtins();
  snprintf(F.dir, sizeof F.dir, "/tmp/vn_api_XXXXXX");
  if (!mkdtemp(F.dir)) return -1;
  vn_err e = {0};
  F.user = item_key_generate(&e);
  F.other = item_key_generate(&e);
  if (!F.user || !F.other) return -1;

  config_defaults(&F.cfg);
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "dataDir: %s\nport: \"127.0.0.1:8080\"\nmaxItemSize: %d\nresultWaitMs: 5000\n"
           "peers:\n  - accId: \"%s\"\n    url: http://127.0.0.1:9\n    name: other\n",
           F.dir, MAX_ITEM, item_key_address(F.other));
  if (config_load_string(&F.cfg, yaml, strlen(yaml), "test", &e)) {
    fprintf(stderr, "config: %s\n", e.msg);
    return -1;
  }
  /* config refuses port 0 ("1..65535"); the API accepts it: any free port. */
  F.cfg.listen_port = 0;
  F.n = node_open(&F.cfg, &e);
  if (!F.n) {
    fprintf(stderr, "node_open: %s: %s\n", e.code, e.msg);
    return -1;
  }
  F.a = api_start(F.n, &F.cfg, &e);
  if (!F.a) {
    fprintf(stderr, "api_start: %s: %s\n", e.code, e.msg);
    return -1;
  }
  if (api_port(F.a) <= 0) return -1;
  snprintf(F.base, sizeof F.base, "http://127.0.0.1:%d", api_port(F.a));

  /* A module and a process on the echo VM. */
  size_t len;
  const char *mtags[] = {"Data-Protocol", "hymx",          "Variant",      "v0.1.0", "Type",
                         "Module",        "Module-Format", VM_ECHO_FORMAT, NULL};
  uint8_t *raw = make_item(F.user, NULL, mtags, "echo module", &len, F.mid);
  submit_ok(raw, len, F.mid);
  free(raw);
  const char *ptags[] = {"Data-Protocol", "hymx", "Variant",   "v0.1.0",          "Type", "Process",
                         "Module",        F.mid,  "Scheduler", node_address(F.n), NULL};
  raw = make_item(F.user, NULL, ptags, "process data", &len, F.pid);
  submit_ok(raw, len, F.pid);
  free(raw);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  api_stop(F.a);
  node_close(F.n);
  config_free(&F.cfg);
  item_key_free(F.user);
  item_key_free(F.other);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", F.dir);
  if (system(cmd) != 0) return -1;
  curl_global_cleanup();
  return 0;
}

/* ---- the parser on its own ---- */

#define ID43 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ID43B "abcdefghijklmnopqrstuvwxyz-_0123456789ABCDE"

static void test_route_parse(void **state) {
  (void)state;
  api_route r;
  assert_int_equal(api_route_parse("POST", "/", &r), 0);
  assert_int_equal(r.id, AR_SUBMIT);
  assert_int_equal(api_route_parse("GET", "/", &r), 0);
  assert_int_equal(r.id, AR_SU_INFO);
  assert_int_equal(api_route_parse("GET", "/info/", &r), 0);
  assert_int_equal(r.id, AR_INFO);
  assert_int_equal(api_route_parse("GET", "/result/" ID43, &r), 0);
  assert_int_equal(r.id, AR_RESULT);
  assert_string_equal(r.msgid, ID43);
  assert_string_equal(r.pid, "");
  assert_int_equal(api_route_parse("GET", "/result/" ID43 "/" ID43B "?timeout-ms=5", &r), 0);
  assert_string_equal(r.pid, ID43);
  assert_string_equal(r.msgid, ID43B);
  assert_int_equal(r.timeout_ms, 5);
  assert_int_equal(api_route_parse("GET", "/result/" ID43B "?process-id=" ID43, &r), 0);
  assert_string_equal(r.pid, ID43);
  assert_int_equal(api_route_parse("GET", "/messageByNonce/" ID43 "/9007199254740992", &r), 0);
  assert_int_equal(r.nonce, 9007199254740992LL);
  assert_int_equal(api_route_parse("GET", "/messageByNonce/" ID43 "/9007199254740993", &r), -1);
  assert_string_equal(r.error, "bad_nonce");
  assert_int_equal(api_route_parse("GET", "/messageByNonce/" ID43 "/-1", &r), -1);
  assert_string_equal(r.error, "bad_nonce");
  assert_int_equal(api_route_parse("GET", "/messageByNonce/" ID43 "/1e3", &r), -1);
  assert_int_equal(api_route_parse("GET", "/message/short", &r), -1);
  assert_string_equal(r.error, "bad_id");
  assert_int_equal(r.status, 400);
  assert_int_equal(api_route_parse("GET", "/message/" ID43 "=", &r), -1);
  assert_int_equal(
      api_route_parse("GET", "/message/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", &r), -1);
  assert_int_equal(api_route_parse("GET", "/nope", &r), -1);
  assert_int_equal(r.status, 404);
  assert_int_equal(api_route_parse("GET", "/info/x/y/z", &r), -1);
  assert_int_equal(r.status, 404);
  assert_int_equal(api_route_parse("POST", "/info", &r), -1);
  assert_int_equal(r.status, 405);
  assert_int_equal(api_route_parse("DELETE", "/", &r), -1);
  assert_int_equal(r.status, 405);
  assert_int_equal(api_route_parse("GET", "/dry-run", &r), -1);
  assert_int_equal(r.status, 405);
  assert_int_equal(api_route_parse("OPTIONS", "/anything/at/all", &r), 0);
  assert_int_equal(r.id, AR_OPTIONS);
  assert_int_equal(api_route_parse("GET", "/" ID43 "?process-id=" ID43B, &r), 0);
  assert_int_equal(r.id, AR_SU_MESSAGE);
  assert_string_equal(r.pid, ID43B);
  assert_int_equal(api_route_parse("GET", "/cache/" ID43 "/a/b c", &r), 0);
  assert_string_equal(r.key, "a/b c");
  assert_int_equal(api_route_parse_path("GET", "/cache/" ID43 "/what?&x=1", &r), 0);
  assert_string_equal(r.key, "what?&x=1");
  assert_int_equal(api_route_parse("GET", "/node/0x972AeD684D6f817e1b58AF70933dF1b4a75bfA51", &r),
                   0);
  assert_int_equal(api_route_parse("GET", "/node/0x972AeD684D6f817e1b58AF70933dF1b4a75bfA5", &r),
                   -1);
  assert_int_equal(api_route_parse("GET", "/processes/" ID43, &r), 0);
  assert_string_equal(r.pid, ID43);
  assert_string_equal(r.acc, ID43);
  assert_int_equal(api_route_parse("GET", "", &r), -1);
  assert_int_equal(api_route_parse(NULL, NULL, &r), -1);

  /* results queries */
  assert_int_equal(api_route_parse("GET", "/results/" ID43, &r), 0);
  assert_int_equal(r.limit, 25);
  assert_int_equal(r.asc, 1);
  assert_int_equal(r.after, -1);
  assert_true(r.before == INT64_MAX);
  assert_int_equal(api_route_parse("GET", "/results/" ID43 "?limit=5000&sort=desc&from=3&to=9", &r),
                   0);
  assert_int_equal(r.limit, 1000);
  assert_int_equal(r.asc, 0);
  assert_int_equal(r.after, 3);
  assert_int_equal(r.before, 9);
  assert_int_equal(api_route_parse("GET", "/results/" ID43 "?limit=0", &r), -1);
  assert_string_equal(r.error, "bad_limit");
  assert_int_equal(api_route_parse("GET", "/results/" ID43 "?sort=UP", &r), -1);
  assert_string_equal(r.error, "bad_sort");
  assert_int_equal(api_route_parse("GET", "/results/" ID43 "?from=%%%", &r), -1);
  assert_string_equal(r.error, "bad_cursor");
  assert_int_equal(api_route_parse("GET", "/results/" ID43 "?from=&limit=", &r), 0);

  /* cursors: standard base64 with '+' and '/', '+' arriving as ' ' */
  const char *cj =
      "{\"timestamp\":1700000000000,\"ordinate\":\"12\",\"cron\":null,\"sort\":\"ASC\"}";
  char *c64 = b64std_encode_alloc((const uint8_t *)cj, strlen(cj));
  int64_t nonce = -1;
  assert_int_equal(api_parse_cursor(c64, &nonce), 0);
  assert_int_equal(nonce, 12);
  for (char *p = c64; *p; p++)
    if (*p == '+') *p = ' ';
  assert_int_equal(api_parse_cursor(c64, &nonce), 0);
  free(c64);
  assert_int_equal(api_parse_cursor("42", &nonce), 0);
  assert_int_equal(nonce, 42);
  assert_int_equal(api_parse_cursor("eyJvcmRpbmF0ZSI6LTF9", &nonce), -1); /* {"ordinate":-1} */
  assert_int_equal(api_parse_cursor("bm90IGpzb24=", &nonce), -1);         /* "not json" */
}

/* ---- against the server ---- */

static void test_submit_and_result(void **state) {
  (void)state;
  char id[ITEM_ID_LEN + 1];
  json_t *res = send_and_wait("hello", id);
  json_t *out = json_object_get(res, "Output");
  assert_string_equal(json_string_value(json_object_get(out, "echo")), "hello");
  assert_string_equal(json_string_value(json_object_get(out, "action")), "Ping");
  json_decref(res);

  char path[200];
  snprintf(path, sizeof path, "/result/%s/%s", F.pid, id);
  res = get_json(path, 200);
  assert_string_equal(json_string_value(json_object_get(json_object_get(res, "Output"), "echo")),
                      "hello");
  json_decref(res);
  snprintf(path, sizeof path, "/result/%s?process-id=%s", id, F.pid);
  json_decref(get_json(path, 200));

  /* the wrong process */
  snprintf(path, sizeof path, "/result/%s/%s", F.mid, id);
  hres r = http("GET", path, NULL, 0);
  expect_error(&r, 404, "message_not_found");
  hres_free(&r);
  /* a message nobody sent */
  snprintf(path, sizeof path, "/result/%s?timeout-ms=0", ID43);
  r = http("GET", path, NULL, 0);
  expect_error(&r, 404, "message_not_found");
  hres_free(&r);
}

/* Walk /results in one direction; return the nonces seen. */
static int walk(int asc, int limit, int64_t *seen, int max) {
  int n = 0;
  char cursor[512] = "";
  for (int pages = 0; pages < 100; pages++) {
    char path[800];
    snprintf(path, sizeof path, "/results/%s?limit=%d&sort=%s%s%s", F.pid, limit,
             asc ? "ASC" : "DESC", cursor[0] ? (asc ? "&from=" : "&to=") : "", cursor);
    json_t *j = get_json(path, 200);
    json_t *edges = json_object_get(j, "edges");
    assert_true(json_is_array(edges));
    assert_true(json_array_size(edges) <= (size_t)limit);
    size_t i;
    json_t *e;
    json_array_foreach(edges, i, e) {
      const char *c = json_string_value(json_object_get(e, "cursor"));
      assert_non_null(c);
      size_t blen;
      uint8_t *b = b64_decode_alloc(c, strlen(c), &blen);
      assert_non_null(b);
      json_t *cj = json_loadb((const char *)b, blen, 0, NULL);
      free(b);
      assert_non_null(cj);
      assert_true(json_is_integer(json_object_get(cj, "timestamp")));
      assert_true(json_is_null(json_object_get(cj, "cron")));
      assert_string_equal(json_string_value(json_object_get(cj, "sort")), asc ? "ASC" : "DESC");
      int64_t ord = atoll(json_string_value(json_object_get(cj, "ordinate")));
      json_decref(cj);
      json_t *node = json_object_get(e, "node");
      assert_true(json_is_object(node));
      assert_true(json_integer_value(json_object_get(node, "Nonce")) == ord);
      if (n < max) seen[n++] = ord;
      /* the next page starts after this cursor; escape '+', '/', '=' */
      char *esc = curl_easy_escape(NULL, c, 0);
      snprintf(cursor, sizeof cursor, "%s", esc);
      curl_free(esc);
    }
    int more = json_is_true(json_object_get(json_object_get(j, "pageInfo"), "hasNextPage"));
    json_decref(j);
    if (!more) return n;
  }
  fail_msg("pagination did not end");
  return n;
}

static void test_results_pagination(void **state) {
  (void)state;
  char id[ITEM_ID_LEN + 1];
  for (int i = 0; i < 4; i++) {
    char data[16]; /* distinct: the same signed bytes again would be a duplicate */
    snprintf(data, sizeof data, "page %d", i);
    json_decref(send_and_wait(data, id));
  }
  char path[128];
  snprintf(path, sizeof path, "/nonce/%s", F.pid);
  json_t *nj = get_json(path, 200);
  int64_t last = json_integer_value(nj);
  json_decref(nj);
  assert_true(last >= 4);

  int64_t seen[256];
  int n = walk(1, 2, seen, 256);
  assert_int_equal(n, last + 1); /* nonce 0 (the spawn) has a result too */
  for (int i = 0; i < n; i++) assert_int_equal(seen[i], i);
  n = walk(0, 3, seen, 256);
  assert_int_equal(n, last + 1);
  for (int i = 0; i < n; i++) assert_int_equal(seen[i], last - i);

  /* plain nonces as bounds, both exclusive */
  snprintf(path, sizeof path, "/results/%s?from=1&to=4", F.pid);
  json_t *j = get_json(path, 200);
  json_t *edges = json_object_get(j, "edges");
  assert_int_equal(json_array_size(edges), 2);
  assert_int_equal(json_integer_value(
                       json_object_get(json_object_get(json_array_get(edges, 0), "node"), "Nonce")),
                   2);
  assert_false(json_is_true(json_object_get(json_object_get(j, "pageInfo"), "hasNextPage")));
  json_decref(j);

  snprintf(path, sizeof path, "/results/%s?limit=nope", F.pid);
  hres r = http("GET", path, NULL, 0);
  expect_error(&r, 400, "bad_limit");
  hres_free(&r);
  r = http("GET", "/results/" ID43, NULL, 0);
  expect_error(&r, 404, "process_not_found");
  hres_free(&r);
  r = http("GET", "/nonce/" ID43, NULL, 0);
  expect_error(&r, 404, "process_not_found");
  hres_free(&r);
}

static json_t *tag_value(json_t *item, const char *name) {
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(item, "tags"), i, t) {
    if (!strcmp(json_string_value(json_object_get(t, "name")), name))
      return json_object_get(t, "value");
  }
  return NULL;
}

static void test_item_routes(void **state) {
  (void)state;
  char id[ITEM_ID_LEN + 1];
  size_t len;
  uint8_t *raw = make_message(F.pid, "cached value", "Echo-Cache", "greeting", &len, id);
  submit_ok(raw, len, id);
  free(raw);
  char path[256];
  snprintf(path, sizeof path, "/result/%s", id);
  json_decref(get_json(path, 200));

  snprintf(path, sizeof path, "/message/%s", id);
  json_t *m = get_json(path, 200);
  assert_string_equal(json_string_value(json_object_get(m, "id")), id);
  assert_string_equal(json_string_value(json_object_get(m, "target")), F.pid);
  json_decref(m);

  snprintf(path, sizeof path, "/assignmentByMessage/%s", id);
  json_t *asg = get_json(path, 200);
  assert_string_equal(json_string_value(tag_value(asg, "Message")), id);
  assert_string_equal(json_string_value(tag_value(asg, "Process")), F.pid);
  assert_string_equal(json_string_value(tag_value(asg, "Type")), "Assignment");
  const char *nonce = json_string_value(tag_value(asg, "Nonce"));
  assert_non_null(nonce);

  snprintf(path, sizeof path, "/assignmentByNonce/%s/%s", F.pid, nonce);
  json_t *asg2 = get_json(path, 200);
  assert_string_equal(json_string_value(json_object_get(asg2, "id")),
                      json_string_value(json_object_get(asg, "id")));
  json_decref(asg2);
  snprintf(path, sizeof path, "/messageByNonce/%s/%s", F.pid, nonce);
  m = get_json(path, 200);
  assert_string_equal(json_string_value(json_object_get(m, "id")), id);
  json_decref(m);
  json_decref(asg);

  /* the spawn at nonce 0 */
  snprintf(path, sizeof path, "/messageByNonce/%s/0", F.pid);
  m = get_json(path, 200);
  assert_string_equal(json_string_value(json_object_get(m, "id")), F.pid);
  json_decref(m);

  /* 404 null */
  const char *nulls[] = {"/message/" ID43, "/assignmentByMessage/" ID43, "/module/" ID43, NULL};
  for (int i = 0; nulls[i]; i++) {
    hres r = http("GET", nulls[i], NULL, 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "null");
    hres_free(&r);
  }
  snprintf(path, sizeof path, "/messageByNonce/%s/999999", F.pid);
  hres r = http("GET", path, NULL, 0);
  assert_int_equal(r.status, 404);
  assert_string_equal(r.body, "null");
  hres_free(&r);

  /* AO SU: /:msgid?process-id= */
  snprintf(path, sizeof path, "/%s?process-id=%s", id, F.pid);
  json_t *su = get_json(path, 200);
  assert_string_equal(json_string_value(json_object_get(json_object_get(su, "message"), "id")), id);
  assert_string_equal(json_string_value(tag_value(json_object_get(su, "assignment"), "Message")),
                      id);
  json_decref(su);
  snprintf(path, sizeof path, "/%s?process-id=%s", id, F.mid);
  r = http("GET", path, NULL, 0);
  expect_error(&r, 404, "message_not_found");
  hres_free(&r);

  /* cache */
  snprintf(path, sizeof path, "/cache/%s/greeting", F.pid);
  r = http("GET", path, NULL, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "cached value");
  assert_true(has_header(&r, "Content-Type: text/plain"));
  hres_free(&r);
  snprintf(path, sizeof path, "/cache/%s/greeting%%3Fx=1", F.pid); /* a '?' in the key */
  r = http("GET", path, NULL, 0);
  expect_error(&r, 404, "cache_key_not_found");
  assert_non_null(strstr(r.body, "greeting?x=1"));
  hres_free(&r);
  snprintf(path, sizeof path, "/cache/%s/nothing", F.pid);
  r = http("GET", path, NULL, 0);
  expect_error(&r, 404, "cache_key_not_found");
  hres_free(&r);

  /* processes, nodes, modules */
  snprintf(path, sizeof path, "/processes/%s", F.pid);
  json_t *p = get_json(path, 200);
  json_t *proc = json_object_get(p, "process");
  assert_string_equal(json_string_value(json_object_get(proc, "id")), F.pid);
  assert_string_equal(json_string_value(json_object_get(json_object_get(proc, "owner"), "address")),
                      item_key_address(F.user));
  assert_string_equal(json_string_value(tag_value(proc, "Module")), F.mid);
  assert_true(json_is_integer(json_object_get(proc, "timestamp")));
  assert_string_equal(json_string_value(tag_value(json_object_get(p, "assignment"), "Nonce")), "0");
  json_decref(p);
  snprintf(path, sizeof path, "/processes/%s", node_address(F.n));
  p = get_json(path, 200);
  assert_true(json_is_array(p));
  int found = 0;
  for (size_t i = 0; i < json_array_size(p); i++)
    found |= !strcmp(json_string_value(json_array_get(p, i)), F.pid);
  assert_true(found);
  json_decref(p);
  snprintf(path, sizeof path, "/processes/%s", item_key_address(F.other));
  p = get_json(path, 200);
  assert_int_equal(json_array_size(p), 0);
  json_decref(p);

  json_t *nodes = get_json("/nodes", 200);
  assert_true(json_array_size(nodes) >= 2); /* this node and its peer */
  json_decref(nodes);
  snprintf(path, sizeof path, "/node/%s", node_address(F.n));
  json_t *nd = get_json(path, 200);
  assert_string_equal(json_string_value(json_object_get(nd, "Acc-Id")), node_address(F.n));
  json_decref(nd);
  snprintf(path, sizeof path, "/node/%s", item_key_address(F.other));
  nd = get_json(path, 200);
  assert_string_equal(json_string_value(json_object_get(nd, "URL")), "http://127.0.0.1:9");
  json_decref(nd);
  r = http("GET", "/node/0x0000000000000000000000000000000000000001", NULL, 0);
  expect_error(&r, 404, "node_not_found");
  hres_free(&r);
  snprintf(path, sizeof path, "/nodesByProcess/%s", F.pid);
  nd = get_json(path, 200);
  assert_int_equal(json_array_size(nd), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(nd, 0), "Acc-Id")),
                      node_address(F.n));
  json_decref(nd);
  nd = get_json("/nodesByProcess/" ID43, 200);
  assert_int_equal(json_array_size(nd), 0);
  json_decref(nd);

  json_t *mods = get_json("/modules", 200);
  int fmt = 0, mod = 0;
  for (size_t i = 0; i < json_array_size(json_object_get(mods, "formats")); i++)
    fmt |= !strcmp(json_string_value(json_array_get(json_object_get(mods, "formats"), i)),
                   VM_ECHO_FORMAT);
  for (size_t i = 0; i < json_array_size(json_object_get(mods, "modules")); i++) {
    json_t *x = json_array_get(json_object_get(mods, "modules"), i);
    mod |= !strcmp(json_string_value(json_object_get(x, "id")), F.mid) &&
           !strcmp(json_string_value(json_object_get(x, "format")), VM_ECHO_FORMAT);
  }
  assert_true(fmt && mod);
  json_decref(mods);
  snprintf(path, sizeof path, "/module/%s", F.mid);
  json_t *mj = get_json(path, 200);
  assert_string_equal(json_string_value(json_object_get(mj, "id")), F.mid);
  assert_string_equal(json_string_value(tag_value(mj, "Module-Format")), VM_ECHO_FORMAT);
  json_decref(mj);

  /* info, timestamp, root, verify-log */
  json_t *info = get_json("/info", 200);
  assert_string_equal(json_string_value(json_object_get(info, "Protocol")), "hymx");
  assert_string_equal(json_string_value(json_object_get(json_object_get(info, "Node"), "Acc-Id")),
                      node_address(F.n));
  json_decref(info);
  json_t *ts = get_json("/timestamp", 200);
  assert_true(json_integer_value(json_object_get(ts, "timestamp")) > 1600000000000LL);
  assert_string_equal(json_string_value(json_object_get(ts, "block_height")), "000000000000");
  json_decref(ts);
  json_t *root = get_json("/", 200);
  assert_string_equal(json_string_value(json_object_get(root, "address")), node_address(F.n));
  assert_true(json_is_integer(json_object_get(root, "timestamp")));
  json_decref(root);
  snprintf(path, sizeof path, "/verify-log/%s", F.pid);
  json_t *v = get_json(path, 200);
  if (!json_is_true(json_object_get(v, "valid")))
    fail_msg("verify-log: %s", json_string_value(json_object_get(v, "reason")));
  assert_true(json_integer_value(json_object_get(v, "checked")) >= 2);
  assert_int_equal(json_integer_value(json_object_get(v, "bad_nonce")), -1);
  assert_string_equal(json_string_value(json_object_get(v, "pid")), F.pid);
  json_decref(v);
  r = http("GET", "/verify-log/" ID43, NULL, 0);
  expect_error(&r, 404, "process_not_found");
  hres_free(&r);
}

static void test_dryrun(void **state) {
  (void)state;
  char path[128], body[512];
  snprintf(path, sizeof path, "/nonce/%s", F.pid);
  json_t *before = get_json(path, 200);
  snprintf(body, sizeof body,
           "{\"Id\":\"x\",\"Owner\":\"%s\",\"Target\":\"%s\",\"Data\":\"dry\",\"Anchor\":\"\","
           "\"Tags\":[{\"name\":\"Action\",\"value\":\"Ping\"}]}",
           item_key_address(F.user), F.pid);
  snprintf(path, sizeof path, "/dry-run?process-id=%s", F.pid);
  hres r = http("POST", path, body, strlen(body));
  if (r.status != 200) fail_msg("dry-run: %ld %s", r.status, r.body);
  json_t *j = jbody(&r);
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "Output"), "echo")),
                      "dry");
  json_decref(j);
  hres_free(&r);
  /* nothing persisted */
  snprintf(path, sizeof path, "/nonce/%s", F.pid);
  json_t *after = get_json(path, 200);
  assert_true(json_equal(before, after));
  json_decref(before);
  json_decref(after);

  r = http("POST", "/dry-run", body, strlen(body));
  expect_error(&r, 400, "missing_process_id");
  hres_free(&r);
  snprintf(path, sizeof path, "/dry-run?process-id=%s", F.pid);
  r = http("POST", path, "{not json", 9);
  expect_error(&r, 400, "bad_json");
  hres_free(&r);
  r = http("POST", "/dry-run?process-id=" ID43, body, strlen(body));
  expect_error(&r, 404, "process_not_found");
  hres_free(&r);
  r = http("POST", "/dry-run?process-id=nope", body, strlen(body));
  expect_error(&r, 400, "bad_id");
  hres_free(&r);
}

static void test_submit_errors(void **state) {
  (void)state;
  char id[ITEM_ID_LEN + 1];
  size_t len;
  uint8_t *raw = make_message(F.pid, "dup", NULL, NULL, &len, id);
  submit_ok(raw, len, id);
  hres r = http("POST", "/", raw, len);
  expect_error(&r, 400, "duplicate_message");
  assert_non_null(strstr(r.body, "\"message\":")); /* a reason too */
  hres_free(&r);

  /* bad signature: flip a byte of the data (the last byte of the item) */
  uint8_t *bad = malloc(len);
  memcpy(bad, raw, len);
  bad[len - 1] ^= 1;
  r = http("POST", "/", bad, len);
  expect_error(&r, 400, "invalid_signature");
  hres_free(&r);
  free(bad);

  /* malformed: cut short, and garbage */
  r = http("POST", "/", raw, 10);
  expect_error(&r, 400, "item_truncated");
  hres_free(&r);
  r = http("POST", "/", "\x09\x00garbage", 9);
  expect_error(&r, 400, "item_bad_signature_type");
  hres_free(&r);
  r = http("POST", "/", NULL, 0);
  expect_error(&r, 400, "empty_body");
  hres_free(&r);
  free(raw);

  /* over maxItemSize: refused from Content-Length, and when chunked */
  size_t big = MAX_ITEM + 1;
  char *blob = calloc(1, 16u << 20);
  r = http("POST", "/", blob, big);
  expect_error(&r, 413, "body_too_large");
  hres_free(&r);
  r = http("POST", "/", blob, 16u << 20); /* answered before the body is read */
  expect_error(&r, 413, "body_too_large");
  assert_true(r.uploaded < (curl_off_t)(16u << 20));
  hres_free(&r);
  free(blob);
  r = http_ex("POST", "/", NULL, 0, MAX_ITEM * 3);
  expect_error(&r, 413, "body_too_large");
  hres_free(&r);
  /* dry-run bodies are capped at 1 MiB */
  char path[128];
  snprintf(path, sizeof path, "/dry-run?process-id=%s", F.pid);
  r = http_ex("POST", path, NULL, 0, (1u << 20) + 10);
  expect_error(&r, 413, "body_too_large");
  hres_free(&r);

  /* a process for the peer: 308 to it */
  const char *ptags[] = {"Data-Protocol",
                         "hymx",
                         "Variant",
                         "v0.1.0",
                         "Type",
                         "Process",
                         "Module",
                         F.mid,
                         "Scheduler",
                         item_key_address(F.other),
                         NULL};
  raw = make_item(F.user, NULL, ptags, NULL, &len, id);
  r = http("POST", "/", raw, len);
  assert_int_equal(r.status, 308);
  assert_true(has_header(&r, "Location: http://127.0.0.1:9"));
  json_t *j = jbody(&r);
  assert_string_equal(json_string_value(json_object_get(j, "Acc-Id")), item_key_address(F.other));
  assert_string_equal(json_string_value(json_object_get(j, "URL")), "http://127.0.0.1:9");
  json_decref(j);
  hres_free(&r);
  free(raw);
  /* and a scheduler nobody knows */
  const char *utags[] = {"Data-Protocol",
                         "hymx",
                         "Variant",
                         "v0.1.0",
                         "Type",
                         "Process",
                         "Module",
                         F.mid,
                         "Scheduler",
                         "0x0000000000000000000000000000000000000001",
                         NULL};
  raw = make_item(F.user, NULL, utags, NULL, &len, id);
  r = http("POST", "/", raw, len);
  expect_error(&r, 400, "scheduler_unknown");
  hres_free(&r);
  free(raw);
}

static void test_routing_errors(void **state) {
  (void)state;
  hres r = http("GET", "/no/such/route", NULL, 0);
  expect_error(&r, 404, "not_found");
  assert_true(has_header(&r, "Access-Control-Allow-Origin: *"));
  assert_true(has_header(&r, "Content-Type: application/json"));
  hres_free(&r);
  r = http("PUT", "/info", "x", 1);
  expect_error(&r, 405, "method_not_allowed");
  assert_true(has_header(&r, "Allow: GET"));
  hres_free(&r);
  r = http("POST", "/info", "x", 1);
  expect_error(&r, 405, "method_not_allowed");
  hres_free(&r);
  r = http("GET", "/message/not-an-id", NULL, 0);
  expect_error(&r, 400, "bad_id");
  hres_free(&r);
  r = http("GET", "/messageByNonce/" ID43 "/-3", NULL, 0);
  expect_error(&r, 400, "bad_nonce");
  hres_free(&r);
  r = http("GET", "/results/" ID43 "?sort=sideways", NULL, 0);
  expect_error(&r, 400, "bad_sort");
  hres_free(&r);
  r = http("GET", "/%ff/..%2f..%0a", NULL, 0);
  assert_int_equal(r.status, 404);
  hres_free(&r);
  r = http("GET", "/%00", NULL, 0); /* decodes to "/" plus a NUL: the root */
  assert_int_equal(r.status, 200);
  hres_free(&r);

  r = http("OPTIONS", "/", NULL, 0);
  assert_int_equal(r.status, 204);
  assert_true(has_header(&r, "Access-Control-Allow-Origin: *"));
  assert_true(has_header(&r, "Access-Control-Allow-Methods:"));
  assert_true(has_header(&r, "Access-Control-Allow-Headers:"));
  hres_free(&r);
  r = http("HEAD", "/info", NULL, 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.len, 0);
  hres_free(&r);

  r = http("GET", "/info", NULL, 0);
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "Access-Control-Allow-Origin: *"));
  hres_free(&r);
  r = http("GET", "/metrics", NULL, 0);
  assert_int_equal(r.status, 200);
  assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4"));
  assert_non_null(strstr(r.body, "vmnode_http_requests_total{route=\"info\",code=\"2xx\"}"));
  assert_non_null(strstr(r.body, "vmnode_http_requests_total{route=\"other\",code=\"4xx\"}"));
  assert_non_null(strstr(r.body, "vmnode_http_request_seconds_bucket{route=\"submit\""));
  hres_free(&r);
}

/* Many clients at once: thread per connection, blocking submits. */
typedef struct par_arg {
  int k;
  int ok;
} par_arg;

static void *par_worker(void *p) {
  par_arg *a = p;
  for (int i = 0; i < 10; i++) {
    char id[ITEM_ID_LEN + 1], data[32];
    snprintf(data, sizeof data, "par-%d-%d", a->k, i);
    size_t len;
    uint8_t *raw = make_message(F.pid, data, NULL, NULL, &len, id);
    hres r = http("POST", "/", raw, len);
    free(raw);
    a->ok += r.status == 200;
    hres_free(&r);
  }
  return NULL;
}

static void test_parallel_submits(void **state) {
  (void)state;
  pthread_t t[8];
  par_arg args[8];
  for (int i = 0; i < 8; i++) {
    args[i] = (par_arg){.k = i};
    pthread_create(&t[i], NULL, par_worker, &args[i]);
  }
  int ok = 0;
  for (int i = 0; i < 8; i++) {
    pthread_join(t[i], NULL);
    ok += args[i].ok;
  }
  assert_int_equal(ok, 80);
}

/* One node per port: a second listener on a port in use fails (no
 * SO_REUSEPORT sharing), and a restart on the same port binds at once. */
static void test_listen(void **state) {
  (void)state;
  config c2 = F.cfg; /* shallow: only listen_port differs, nothing is freed */
  c2.listen_port = api_port(F.a);
  vn_err e = {0};
  api *second = api_start(F.n, &c2, &e);
  if (second) {
    api_stop(second);
    fail_msg("a second API bound port %d", c2.listen_port);
  }
  assert_string_equal(e.code, "api_listen_failed");

  hres r = http("GET", "/info", NULL, 0);
  assert_int_equal(r.status, 200);
  hres_free(&r);
  api_stop(F.a);
  F.a = api_start(F.n, &c2, &e);
  if (!F.a) fail_msg("restart on port %d: %s", c2.listen_port, e.msg);
  assert_int_equal(api_port(F.a), c2.listen_port);
  r = http("GET", "/info", NULL, 0);
  assert_int_equal(r.status, 200);
  hres_free(&r);

  c2.listen_host = "no such host.invalid";
  assert_null(api_start(F.n, &c2, &e));
  assert_string_equal(e.code, "api_bad_address");
}

/* timeout-ms=0 right after the POST: either the result is there (200) or
 * the message is assigned but not yet executed (504 result_pending). */
static void test_result_pending(void **state) {
  (void)state;
  int pending = 0;
  for (int i = 0; i < 40; i++) {
    char id[ITEM_ID_LEN + 1], data[32], path[160];
    snprintf(data, sizeof data, "pending %d", i);
    size_t len;
    uint8_t *raw = make_message(F.pid, data, NULL, NULL, &len, id);
    submit_ok(raw, len, id);
    free(raw);
    snprintf(path, sizeof path, "/result/%s?timeout-ms=0", id);
    hres r = http("GET", path, NULL, 0);
    if (r.status == 504) {
      expect_error(&r, 504, "result_pending");
      pending++;
    } else if (r.status != 200) {
      fail_msg("GET %s: %ld %s", path, r.status, r.body);
    }
    hres_free(&r);
  }
  print_message("result_pending seen %d times in 40\n", pending);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_route_parse),
      cmocka_unit_test(test_submit_and_result),
      cmocka_unit_test(test_results_pagination),
      cmocka_unit_test(test_item_routes),
      cmocka_unit_test(test_dryrun),
      cmocka_unit_test(test_submit_errors),
      cmocka_unit_test(test_routing_errors),
      cmocka_unit_test(test_parallel_submits),
      cmocka_unit_test(test_result_pending),
      cmocka_unit_test(test_listen),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
