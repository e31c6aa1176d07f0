/* test_graphql.c - POST /graphql (src/api/graphql.c): the GraphQL parser,
 * the transactions arguments and the projection on their own, then the
 * handler against a real node (data dir in /tmp, echo VM) with items signed
 * here, called without HTTP (tests/interop/aoconnect.test.mjs covers the
 * wire with the real npm clients). */
#include "testutil.h"

#include <jansson.h>
#include <unistd.h>

#include "api/graphql.h"
#include "common/log.h"
#include "item/item.h"
#include "node/node.h"
#include "vm/vm.h"

#define ID_A "FzaLlIb-AnpBFMEGu2qpKd2afSZjB5nxqky9hDgzCW8"

/* ---- the parser ---- */

static gql_request parse_ok(const char *q, const char *vars_json, const char *op) {
  json_t *vars = vars_json ? json_loads(vars_json, 0, NULL) : NULL;
  gql_request r;
  vn_err e = {0};
  if (gql_parse(q, strlen(q), vars, op, &r, &e)) fail_msg("parse %s: %s: %s", q, e.code, e.msg);
  json_decref(vars);
  return r;
}

static void parse_fails(const char *q, const char *code) {
  gql_request r;
  vn_err e = {0};
  if (gql_parse(q, strlen(q), NULL, NULL, &r, &e) == 0) fail_msg("parsed: %s", q);
  if (strcmp(e.code, code)) fail_msg("%s: want %s, got %s (%s)", q, code, e.code, e.msg);
  assert_null(r.fields);
}

static void test_parse_aoconnect(void **state) {
  (void)state;
  /* aoconnect 0.0.98 spawn(): the module's tags. */
  gql_request r = parse_ok(
      "\n    query GetTransactions ($transactionIds: [ID!]!) {\n"
      "      transactions(ids: $transactionIds) {\n"
      "        edges { node { owner { address } tags { name value } block { id height timestamp } "
      "} }\n"
      "      }\n    }",
      "{\"transactionIds\":[\"" ID_A "\"]}", NULL);
  assert_int_equal(r.nfields, 1);
  gql_field *t = &r.fields[0];
  assert_string_equal(t->name, "transactions");
  assert_string_equal(t->key, "transactions");
  json_t *ids = json_object_get(t->args, "ids");
  assert_true(json_is_array(ids));
  assert_string_equal(json_string_value(json_array_get(ids, 0)), ID_A);
  assert_int_equal(t->nsub, 1);
  assert_string_equal(t->sub[0].name, "edges");
  assert_string_equal(t->sub[0].sub[0].name, "node");
  assert_int_equal(t->sub[0].sub[0].nsub, 3);
  gql_request_clear(&r);
}

static void test_parse_language(void **state) {
  (void)state;
  /* Aliases, defaults, enums, comments, commas, escapes, block strings,
   * numbers, nested lists and objects, operationName. */
  gql_request r = parse_ok(
      "# a comment\n"
      "query Other { x }\n"
      "query Q($n: Int = 3, $t: [String!]! = [\"Module\"], $given: String) {\n"
      "  a: transactions(first: $n, sort: HEIGHT_ASC, after: null,\n"
      "     tags: [{name: \"Type\", values: $t}], x: {y: [true, false, -1.5e2, 0]}) {\n"
      "    edges { cursor }\n"
      "  }\n"
      "  b: transaction(id: \"\\u00e9\\ud83d\\ude00\\n\\\"\") { id }\n"
      "  c: transaction(id: \"\"\"blo\\\"\"\"ck\"\"\") { id }\n"
      "  d: transaction(id: $given) { id }\n"
      "  e: transaction(id: $missing) { id }\n"
      "}",
      "{\"given\":\"G\"}", "Q");
  assert_int_equal(r.nfields, 5);
  json_t *a = r.fields[0].args;
  assert_string_equal(r.fields[0].key, "a");
  assert_string_equal(r.fields[0].name, "transactions");
  assert_int_equal(json_integer_value(json_object_get(a, "first")), 3);
  assert_string_equal(json_string_value(json_object_get(a, "sort")), "HEIGHT_ASC");
  assert_true(json_is_null(json_object_get(a, "after")));
  json_t *tv = json_object_get(json_array_get(json_object_get(a, "tags"), 0), "values");
  assert_string_equal(json_string_value(json_array_get(tv, 0)), "Module");
  json_t *y = json_object_get(json_object_get(a, "x"), "y");
  assert_true(json_is_true(json_array_get(y, 0)));
  assert_true(json_real_value(json_array_get(y, 2)) == -150.0);
  assert_int_equal(json_integer_value(json_array_get(y, 3)), 0);
  assert_string_equal(json_string_value(json_object_get(r.fields[1].args, "id")),
                      "\xc3\xa9\xf0\x9f\x98\x80\n\"");
  assert_string_equal(json_string_value(json_object_get(r.fields[2].args, "id")), "blo\"\"\"ck");
  assert_string_equal(json_string_value(json_object_get(r.fields[3].args, "id")), "G");
  assert_true(json_is_null(json_object_get(r.fields[4].args, "id")));
  gql_request_clear(&r);

  /* A variable's value wins over its default; the other operation is picked by name. */
  r = parse_ok(
      "query A($n: Int = 3) { t: transactions(first: $n) { edges { cursor } } }"
      " query B { u: transaction(id: \"x\") { id } }",
      "{\"n\":7}", "A");
  assert_int_equal(r.nfields, 1);
  assert_int_equal(json_integer_value(json_object_get(r.fields[0].args, "first")), 7);
  gql_request_clear(&r);
  r = parse_ok("{ transaction(id: \"x\") { id } }", NULL, NULL); /* shorthand */
  assert_string_equal(r.fields[0].name, "transaction");
  gql_request_clear(&r);
}

static void test_parse_errors(void **state) {
  (void)state;
  parse_fails("", "graphql_syntax");
  parse_fails("   # only a comment", "graphql_syntax");
  parse_fails("{ transactions(ids: [\"a\"] { id } }", "graphql_syntax");
  parse_fails("{ transactions { edges { node } }", "graphql_syntax");
  parse_fails("{ }", "graphql_syntax");
  parse_fails("{ t(x: \"unterminated) { id } }", "graphql_syntax");
  parse_fails("{ t(x: \"bad \\q escape\") { id } }", "graphql_syntax");
  parse_fails("{ t(x: \"\\ud800 lone\") { id } }", "graphql_syntax");
  parse_fails("{ t(x: 01) { id } }", "graphql_syntax");
  parse_fails("{ t(x: 99999999999999999999) { id } }", "graphql_syntax");
  parse_fails("{ t(x: 1.5e99999) { id } }", "graphql_syntax");
  parse_fails("{ t(x: \"\xff\") { id } }", "graphql_syntax");
  parse_fails("query ($a: Int = $b) { t { id } }", "graphql_syntax");
  parse_fails("{ t { ...F } } fragment F on T { id }", "graphql_unsupported");
  parse_fails("fragment F on T { id }", "graphql_unsupported");
  parse_fails("{ t @include(if: true) { id } }", "graphql_unsupported");
  parse_fails("mutation { t }", "graphql_unsupported");
  parse_fails("subscription { t }", "graphql_unsupported");
  parse_fails("query A { t } query B { u }", "graphql_bad_request"); /* which one? */

  char deep[400] = "{ t(x: ";
  for (int i = 0; i < 40; i++) strcat(deep, "[");
  strcat(deep, "1");
  for (int i = 0; i < 40; i++) strcat(deep, "]");
  strcat(deep, ") }");
  parse_fails(deep, "graphql_too_large");
  char *many = malloc(GQL_MAX_FIELDS * 4 + 16);
  strcpy(many, "{");
  for (int i = 0; i <= GQL_MAX_FIELDS; i++) strcat(many, " a ");
  strcat(many, "}");
  parse_fails(many, "graphql_too_large");
  free(many);

  /* The body around the document. */
  gql_request r;
  vn_err e = {0};
  const char *bad[] = {"",
                       "[]",
                       "{\"query\":1}",
                       "{\"query\":\"{a}\",\"variables\":[1]}",
                       "{\"query\":\"{a}\",\"operationName\":3}",
                       "not json"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(gql_parse_body((const uint8_t *)bad[i], strlen(bad[i]), &r, &e), -1);
    assert_string_equal(e.code, "graphql_bad_request");
  }
  const char *good = "{\"query\":\"query Q { a }\",\"variables\":null,\"operationName\":\"Q\"}";
  assert_int_equal(gql_parse_body((const uint8_t *)good, strlen(good), &r, &e), 0);
  assert_string_equal(r.fields[0].name, "a");
  gql_request_clear(&r);
}

/* ---- arguments and projection ---- */

static int filter_of(const char *args_json, int single, gql_tx_filter *f, vn_err *e) {
  json_t *args = json_loads(args_json, 0, NULL);
  assert_non_null(args);
  int rc = gql_tx_filter_from_args(args, single, f, e);
  json_decref(args);
  return rc;
}

static void test_filter_args(void **state) {
  (void)state;
  gql_tx_filter f;
  vn_err e = {0};
  assert_int_equal(
      filter_of("{\"ids\":[\"a\",\"b\"],\"owners\":\"o\",\"recipients\":[],\"first\":1000,"
                "\"sort\":\"HEIGHT_ASC\",\"after\":\"c\",\"block\":null,\"bundledIn\":null,"
                "\"tags\":[{\"name\":\"Type\",\"values\":[\"Process\"],\"op\":\"EQ\"},"
                "{\"name\":\"Name\",\"values\":\"aos\",\"match\":\"EXACT\"}]}",
                0, &f, &e),
      0);
  assert_true(f.has_ids);
  assert_int_equal(f.nids, 2);
  assert_int_equal(f.nowners, 1);
  assert_string_equal(f.owners[0], "o");
  assert_int_equal(f.nrecipients, 0);
  assert_int_equal(f.first, GQL_MAX_FIRST); /* capped, as arweave.net does */
  assert_true(f.asc);
  assert_string_equal(f.after, "c");
  assert_int_equal(f.ntags, 2);
  assert_string_equal(f.tags[1].values[0], "aos");

  /* Matching: owners (0x without case), recipients, every tag filter. */
  item *it = item_new();
  assert_int_equal(item_add_tag(it, "Type", "Process", &e), 0);
  assert_int_equal(item_add_tag(it, "Name", "aos", &e), 0);
  assert_true(gql_item_matches(&f, it, "o"));
  assert_false(gql_item_matches(&f, it, "p"));
  gql_tx_filter_clear(&f);
  assert_int_equal(filter_of("{\"owners\":[\"0xABCdef\"],\"tags\":[{\"name\":\"Name\","
                             "\"values\":[\"x\",\"aos\"]}]}",
                             0, &f, &e),
                   0);
  assert_false(f.has_ids);
  assert_int_equal(f.first, GQL_DEFAULT_FIRST);
  assert_false(f.asc);
  assert_true(gql_item_matches(&f, it, "0xabcDEF"));
  gql_tx_filter_clear(&f);
  assert_int_equal(filter_of("{\"recipients\":[\"" ID_A "\"]}", 0, &f, &e), 0);
  assert_false(gql_item_matches(&f, it, "o")); /* no target */
  assert_int_equal(item_set_target_b64(it, ID_A, &e), 0);
  assert_true(gql_item_matches(&f, it, "o"));
  gql_tx_filter_clear(&f);
  assert_int_equal(filter_of("{\"tags\":[{\"name\":\"Name\",\"values\":[\"ao\"]}]}", 0, &f, &e), 0);
  assert_false(gql_item_matches(&f, it, "o")); /* exact values, not prefixes */
  gql_tx_filter_clear(&f);
  item_free(it);

  assert_int_equal(filter_of("{\"id\":\"x\"}", 1, &f, &e), 0);
  assert_true(f.has_ids);
  assert_int_equal(f.first, 1);
  gql_tx_filter_clear(&f);
  assert_int_equal(filter_of("{\"ids\":[]}", 0, &f, &e), 0);
  assert_true(f.has_ids); /* an empty list matches nothing, it is not "any" */
  gql_tx_filter_clear(&f);

  const struct {
    const char *args;
    int single;
    const char *code;
  } bad[] = {
      {"{\"ids\":[1]}", 0, "graphql_bad_argument"},
      {"{\"ids\":{}}", 0, "graphql_bad_argument"},
      {"{\"first\":-1}", 0, "graphql_bad_argument"},
      {"{\"first\":\"10\"}", 0, "graphql_bad_argument"},
      {"{\"sort\":\"UP\"}", 0, "graphql_bad_argument"},
      {"{\"after\":5}", 0, "graphql_bad_argument"},
      {"{\"tags\":{}}", 0, "graphql_bad_argument"},
      {"{\"tags\":[{\"values\":[\"a\"]}]}", 0, "graphql_bad_argument"},
      {"{\"tags\":[{\"name\":\"a\"}]}", 0, "graphql_bad_argument"},
      {"{\"tags\":[{\"name\":\"a\",\"values\":[\"b\"],\"op\":\"NEQ\"}]}", 0, "graphql_unsupported"},
      {"{\"tags\":[{\"name\":\"a\",\"values\":[\"b\"],\"match\":\"WILDCARD\"}]}", 0,
       "graphql_unsupported"},
      {"{\"block\":{\"min\":1}}", 0, "graphql_unsupported"},
      {"{\"height\":1}", 0, "graphql_unsupported"},
      {"{}", 1, "graphql_bad_argument"},
      {"{\"id\":\"a\",\"x\":1}", 1, "graphql_bad_argument"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    e = (vn_err){0};
    if (filter_of(bad[i].args, bad[i].single, &f, &e) == 0) fail_msg("accepted %s", bad[i].args);
    if (strcmp(e.code, bad[i].code))
      fail_msg("%s: want %s, got %s", bad[i].args, bad[i].code, e.code);
  }
  char big[2000] = "{\"owners\":[";
  for (int i = 0; i <= GQL_MAX_LIST; i++) strcat(big, i ? ",\"o\"" : "\"o\"");
  strcat(big, "]}");
  assert_int_equal(filter_of(big, 0, &f, &e), -1);
  assert_string_equal(e.code, "graphql_too_large");
}

static void test_project(void **state) {
  (void)state;
  gql_request r = parse_ok(
      "{ transactions { edges { c: cursor node { id owner { address } "
      "missing tags { value } } } } }",
      NULL, NULL);
  json_t *full = json_loads(
      "{\"pageInfo\":{\"hasNextPage\":false},\"edges\":[{\"cursor\":\"1\",\"node\":{\"id\":\"i\","
      "\"owner\":{\"address\":\"a\",\"key\":\"k\"},\"tags\":[{\"name\":\"n\",\"value\":\"v\"}]}}]}",
      0, NULL);
  json_t *p = gql_project(full, r.fields[0].sub, r.fields[0].nsub);
  char *s = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
  assert_string_equal(s,
                      "{\"edges\":[{\"c\":\"1\",\"node\":{\"id\":\"i\",\"owner\":{\"address\":"
                      "\"a\"},\"missing\":null,\"tags\":[{\"value\":\"v\"}]}}]}");
  free(s);
  json_decref(p);
  json_decref(full);
  p = gql_project(NULL, r.fields[0].sub, r.fields[0].nsub);
  assert_true(json_is_null(p));
  json_decref(p);
  gql_request_clear(&r);
}

/* ---- the handler on a real node ---- */

typedef struct fixture {
  char dir[64];
  config cfg;
  node *n;
  api a; /* only n and c are used by the handler */
  item_key *alice, *bob;
  char mid[ITEM_ID_LEN + 1];    /* an ao module (echo VM) */
  char hymx[ITEM_ID_LEN + 1];   /* a hymx module */
  char pid[3][ITEM_ID_LEN + 1]; /* alice "calc", alice "chat", bob "calc" */
} fixture;

static fixture F;

static void submit(const item_key *k, const char *const *tags, const char *data,
                   char id[ITEM_ID_LEN + 1]) {
  vn_err e = {0};
  item *it = item_new();
  for (size_t i = 0; tags[i]; i += 2)
    assert_int_equal(item_add_tag(it, tags[i], tags[i + 1], &e), 0);
  item_set_data(it, (const uint8_t *)data, strlen(data));
  if (item_sign(it, k, &e)) fail_msg("item_sign: %s", e.msg);
  size_t len;
  uint8_t *raw = item_encode(it, &len, &e);
  item_free(it);
  node_submit_res res;
  memset(&res, 0, sizeof res);
  if (node_submit(F.n, raw, len, &res, &e)) fail_msg("node_submit: %s: %s", e.code, e.msg);
  strcpy(id, res.id);
  node_submit_res_clear(&res);
  free(raw);
}

static int setup(void **state) {
  (void)state;
  log_init(NULL, "error", NULL, NULL);
  vm_register_builtins();
  snprintf(F.dir, sizeof F.dir, "/tmp/vn_gql_XXXXXX");
  if (!mkdtemp(F.dir)) return -1;
  vn_err e = {0};
  F.alice = item_key_generate(&e);
  F.bob = item_key_generate(&e);
  config_defaults(&F.cfg);
  char yaml[256];
  snprintf(yaml, sizeof yaml, "dataDir: %s\nport: \"127.0.0.1:18080\"\n", F.dir);
  if (config_load_string(&F.cfg, yaml, strlen(yaml), "test", &e)) return -1;
  F.n = node_open(&F.cfg, &e);
  if (!F.n) {
    fprintf(stderr, "node_open: %s: %s\n", e.code, e.msg);
    return -1;
  }
  F.a.n = F.n;
  F.a.c = &F.cfg;
  const char *mt[] = {"Data-Protocol",
                      "ao",
                      "Variant",
                      "ao.TN.1",
                      "Type",
                      "Module",
                      "Module-Format",
                      VM_ECHO_FORMAT,
                      "Input-Encoding",
                      "JSON-1",
                      "Output-Encoding",
                      "JSON-1",
                      "Content-Type",
                      "text/plain",
                      NULL};
  submit(F.alice, mt, "echo", F.mid);
  const char *ht[] = {"Data-Protocol", "hymx",          "Variant",      "v0.1.0", "Type",
                      "Module",        "Module-Format", VM_ECHO_FORMAT, NULL};
  submit(F.bob, ht, "hymx echo", F.hymx);
  const char *names[] = {"calc", "chat", "calc"};
  for (int i = 0; i < 3; i++) {
    const char *pt[] = {"Data-Protocol", "ao",     "Variant", "ao.TN.1",   "Type",
                        "Process",       "Module", F.mid,     "Scheduler", node_address(F.n),
                        "Name",          names[i], NULL};
    submit(i < 2 ? F.alice : F.bob, pt, "", F.pid[i]);
    usleep(2000); /* distinct spawn times: the order below is by time */
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  node_close(F.n);
  config_free(&F.cfg);
  item_key_free(F.alice);
  item_key_free(F.bob);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", F.dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* POST /graphql with {query, variables}; expect `status`; the answer. */
static json_t *gql(const char *query, const char *vars_json, int status) {
  json_t *body = json_pack("{s:s}", "query", query);
  if (vars_json) json_object_set_new(body, "variables", json_loads(vars_json, 0, NULL));
  char *b = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  api_resp o = {0};
  api_graphql(&F.a, (const uint8_t *)b, strlen(b), &o);
  free(b);
  if (o.status != status) fail_msg("%s: want %d, got %d: %.400s", query, status, o.status, o.body);
  json_t *j = json_loadb(o.body, o.len, 0, NULL);
  if (!j) fail_msg("not JSON: %.300s", o.body);
  api_resp_clear(&o);
  return j;
}

static json_t *edges_of(json_t *ans) {
  return json_object_get(json_object_get(json_object_get(ans, "data"), "transactions"), "edges");
}

static const char *tag_value(json_t *node, const char *name) {
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(node, "tags"), i, t) {
    if (!strcmp(json_string_value(json_object_get(t, "name")), name))
      return json_string_value(json_object_get(t, "value"));
  }
  return NULL;
}

static void test_module_by_id(void **state) {
  (void)state;
  char vars[128];
  snprintf(vars, sizeof vars, "{\"ids\":[\"%s\"]}", F.mid);
  json_t *ans =
      gql("query GetTransactions ($ids: [ID!]!) { transactions(ids: $ids) { edges { node "
          "{ id owner { address key } tags { name value } data { size type } block { "
          "id height timestamp } fee { ar } } } } }",
          vars, 200);
  json_t *edges = edges_of(ans);
  assert_int_equal(json_array_size(edges), 1);
  json_t *node = json_object_get(json_array_get(edges, 0), "node");
  assert_string_equal(json_string_value(json_object_get(node, "id")), F.mid);
  assert_string_equal(json_string_value(json_object_get(json_object_get(node, "owner"), "address")),
                      item_key_address(F.alice));
  assert_string_equal(tag_value(node, "Module-Format"), VM_ECHO_FORMAT);
  assert_string_equal(tag_value(node, "Input-Encoding"), "JSON-1");
  json_t *data = json_object_get(node, "data");
  assert_string_equal(json_string_value(json_object_get(data, "size")), "4");
  assert_string_equal(json_string_value(json_object_get(data, "type")), "text/plain");
  json_t *block = json_object_get(node, "block");
  assert_int_equal(json_integer_value(json_object_get(block, "height")), 0);
  assert_true(json_integer_value(json_object_get(block, "timestamp")) > 1600000000);
  assert_string_equal(json_string_value(json_object_get(json_object_get(node, "fee"), "ar")),
                      "0.000000000000");
  json_decref(ans);

  /* transaction(id:), an unknown id, a malformed one. */
  snprintf(vars, sizeof vars, "{\"id\":\"%s\"}", F.hymx);
  ans = gql("query ($id: ID!) { transaction(id: $id) { tags { name value } } }", vars, 200);
  assert_string_equal(
      tag_value(json_object_get(json_object_get(ans, "data"), "transaction"), "Data-Protocol"),
      "hymx");
  json_decref(ans);
  ans = gql("{ transaction(id: \"" ID_A "\") { id } }", NULL, 200);
  assert_true(json_is_null(json_object_get(json_object_get(ans, "data"), "transaction")));
  json_decref(ans);
  ans = gql("{ transactions(ids: [\"short\"]) { edges { node { id } } } }", NULL, 200);
  assert_int_equal(json_array_size(edges_of(ans)), 0);
  json_decref(ans);
}

static void test_process_by_owner_and_name(void **state) {
  (void)state;
  /* aos: owners + Data-Protocol=ao, Type=Process, Name=<name>. */
  char q[1024];
  snprintf(q, sizeof q,
           "query ($owners: [String!]!) { transactions(first: 10, owners: $owners, tags: ["
           "{ name: \"Data-Protocol\", values: [\"ao\"] }, { name: \"Type\", values: "
           "[\"Process\"]}, { name: \"Name\", values: [\"calc\"]}]) { edges { node { id tags "
           "{ name value } } } } }");
  char vars[256];
  snprintf(vars, sizeof vars, "{\"owners\":[\"%s\",\"\"]}", item_key_address(F.alice));
  json_t *ans = gql(q, vars, 200);
  json_t *edges = edges_of(ans);
  assert_int_equal(json_array_size(edges), 1);
  json_t *node = json_object_get(json_array_get(edges, 0), "node");
  assert_string_equal(json_string_value(json_object_get(node, "id")), F.pid[0]);
  assert_string_equal(tag_value(node, "Name"), "calc");
  json_decref(ans);

  /* Any owner, by Name (two processes, newest first), or neither. */
  ans =
      gql("{ transactions(tags: [{name: \"Type\", values: [\"Process\"]}, {name: \"Name\", "
          "values: [\"calc\"]}]) { edges { node { id } } } }",
          NULL, 200);
  edges = edges_of(ans);
  assert_int_equal(json_array_size(edges), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(json_array_get(edges, 0), "node"), "id")),
      F.pid[2]);
  json_decref(ans);
  snprintf(vars, sizeof vars, "{\"o\":\"%s\"}", item_key_address(F.bob));
  ans =
      gql("query ($o: String!) { transactions(owners: [$o], tags: [{name: \"Type\", values: "
          "[\"Process\"]}, {name: \"Name\", values: [\"chat\"]}]) { edges { node { id } } } }",
          vars, 200);
  assert_int_equal(json_array_size(edges_of(ans)), 0);
  json_decref(ans);

  /* Pages: first + after, hasNextPage, oldest first with HEIGHT_ASC. */
  const char *page =
      "query ($after: String) { transactions(first: 2, sort: HEIGHT_ASC, after: "
      "$after, tags: [{name: \"Type\", values: [\"Process\"]}]) { pageInfo { "
      "hasNextPage } edges { cursor node { id } } } }";
  ans = gql(page, NULL, 200);
  edges = edges_of(ans);
  assert_int_equal(json_array_size(edges), 2);
  json_t *conn = json_object_get(json_object_get(ans, "data"), "transactions");
  assert_true(json_is_true(json_object_get(json_object_get(conn, "pageInfo"), "hasNextPage")));
  const char *cur = json_string_value(json_object_get(json_array_get(edges, 1), "cursor"));
  assert_string_equal(cur, F.pid[1]);
  snprintf(vars, sizeof vars, "{\"after\":\"%s\"}", cur);
  json_decref(ans);
  ans = gql(page, vars, 200);
  edges = edges_of(ans);
  assert_int_equal(json_array_size(edges), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(json_array_get(edges, 0), "node"), "id")),
      F.pid[2]);
  conn = json_object_get(json_object_get(ans, "data"), "transactions");
  assert_true(json_is_false(json_object_get(json_object_get(conn, "pageInfo"), "hasNextPage")));
  json_decref(ans);
}

static void test_modules_and_scheduler(void **state) {
  (void)state;
  /* Type=Module: every module, filtered by the other tags. */
  json_t *ans =
      gql("{ transactions(tags: [{name: \"Type\", values: [\"Module\"]}, {name: "
          "\"Data-Protocol\", values: [\"ao\"]}]) { edges { node { id } } } }",
          NULL, 200);
  json_t *edges = edges_of(ans);
  size_t i;
  json_t *e;
  int seen_ao = 0;
  json_array_foreach(edges, i, e) {
    const char *id = json_string_value(json_object_get(json_object_get(e, "node"), "id"));
    assert_string_not_equal(id, F.hymx);
    if (!strcmp(id, F.mid)) seen_ao = 1;
  }
  assert_true(seen_ao);
  json_decref(ans);

  /* ao-scheduler-utils: the node's Scheduler-Location, signed by the node. */
  char vars[128];
  snprintf(vars, sizeof vars, "{\"owner\":\"%s\"}", node_address(F.n));
  ans =
      gql("query GetSchedulerLocation ($owner: String!) { transactions (owners: [$owner] tags: "
          "[{ name: \"Data-Protocol\", values: [\"ao\"] }, { name: \"Type\", values: "
          "[\"Scheduler-Location\"] }] # Only need the most recent\n sort: HEIGHT_DESC first: 1 "
          ") { edges { node { owner { address } tags { name value } } } } }",
          vars, 200);
  edges = edges_of(ans);
  assert_int_equal(json_array_size(edges), 1);
  json_t *node = json_object_get(json_array_get(edges, 0), "node");
  assert_string_equal(json_string_value(json_object_get(json_object_get(node, "owner"), "address")),
                      node_address(F.n));
  assert_string_equal(tag_value(node, "Url"), config_base_url(&F.cfg));
  assert_non_null(tag_value(node, "Time-To-Live"));
  json_decref(ans);
  snprintf(vars, sizeof vars, "{\"owner\":\"%s\"}", item_key_address(F.bob));
  ans =
      gql("query ($owner: String!) { transactions(owners: [$owner], tags: [{name: \"Type\", "
          "values: [\"Scheduler-Location\"]}]) { edges { node { id } } } }",
          vars, 200);
  assert_int_equal(json_array_size(edges_of(ans)), 0);
  json_decref(ans);
}

static void expect_gql_error(const char *query, int status, const char *code) {
  json_t *ans = gql(query, NULL, status);
  json_t *err0 = json_array_get(json_object_get(ans, "errors"), 0);
  assert_non_null(json_string_value(json_object_get(err0, "message")));
  const char *got = json_string_value(json_object_get(json_object_get(err0, "extensions"), "code"));
  if (!got || strcmp(got, code)) fail_msg("%s: want %s, got %s", query, code, got ? got : "none");
  json_decref(ans);
}

static void test_refusals(void **state) {
  (void)state;
  expect_gql_error("{ transactions(first: 5) { edges { node { id } } } }", 400,
                   "graphql_unsupported");
  expect_gql_error(
      "{ transactions(tags: [{name: \"Type\", values: [\"Message\"]}]) { edges { "
      "node { id } } } }",
      400, "graphql_unsupported");
  expect_gql_error("{ blocks { edges { node { id } } } }", 400, "graphql_unsupported");
  expect_gql_error("{ transactions(ids: [\"a\"]) }", 400, "graphql_syntax");
  expect_gql_error("{ transactions(ids: [\"a\"], after: \"nope\") { edges { cursor } } }", 400,
                   "graphql_bad_argument");
  expect_gql_error("{ transactions(ids: [\"a\"] { edges { cursor } } }", 400, "graphql_syntax");
  api_resp o = {0};
  api_graphql(&F.a, (const uint8_t *)"{}", 2, &o);
  assert_int_equal(o.status, 400);
  assert_non_null(strstr(o.body, "graphql_bad_request"));
  api_resp_clear(&o);
}

int main(void) {
  const struct CMUnitTest pure[] = {
      cmocka_unit_test(test_parse_aoconnect), cmocka_unit_test(test_parse_language),
      cmocka_unit_test(test_parse_errors),    cmocka_unit_test(test_filter_args),
      cmocka_unit_test(test_project),
  };
  const struct CMUnitTest with_node[] = {
      cmocka_unit_test(test_module_by_id),
      cmocka_unit_test(test_process_by_owner_and_name),
      cmocka_unit_test(test_modules_and_scheduler),
      cmocka_unit_test(test_refusals),
  };
  int failed = cmocka_run_group_tests_name("graphql parser", pure, NULL, NULL);
  return failed + cmocka_run_group_tests_name("graphql on a node", with_node, setup, teardown);
}
