/* fuzz_graphql.c - libFuzzer target for POST /graphql's parser
 * (src/api/graphql.c): the request body, the GraphQL document, the
 * arguments of transactions(...) and the projection of an answer.
 *
 * Input layout: the first byte picks the entry point, the rest is its text:
 *   even: an HTTP body {"query","variables","operationName"} (gql_parse_body);
 *   odd:  a bare document, parsed with fixed variables (gql_parse).
 * Every parse is checked: success means a non-empty tree of named fields
 * with object arguments; failure means an error code and a message. Each
 * top-level field then goes through gql_tx_filter_from_args (whose result
 * must respect the limits), gql_item_matches on a fixed item, and
 * gql_project over a fixed transactions answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/graphql.h"

static const char VARIABLES[] =
    "{\"ids\":[\"FzaLlIb-AnpBFMEGu2qpKd2afSZjB5nxqky9hDgzCW8\"],\"owner\":\"0xd86Dd0047a6067b4eCfC"
    "58B48d508bE6b295C2c6\",\"owners\":[\"a\",\"b\"],\"n\":5,\"name\":\"aos\",\"deep\":[[[[1]]]]}";

static const char ANSWER[] =
    "{\"pageInfo\":{\"hasNextPage\":false},\"edges\":[{\"cursor\":\"c\",\"node\":{\"id\":\"i\","
    "\"anchor\":\"\",\"signature\":\"s\",\"recipient\":\"\",\"owner\":{\"address\":\"a\",\"key\":"
    "\"k\"},\"data\":{\"size\":\"1\",\"type\":null},\"tags\":[{\"name\":\"Type\",\"value\":"
    "\"Process\"},{\"name\":\"Name\",\"value\":\"aos\"}],\"block\":{\"id\":\"\",\"height\":0,"
    "\"timestamp\":1,\"previous\":\"\"}}}]}";

static json_t *vars, *answer;
static item *fixed;

static void check_fields(const gql_field *f, size_t n, int depth) {
  if (depth > GQL_MAX_DEPTH + 1) abort();
  for (size_t i = 0; i < n; i++) {
    if (!f[i].name || !f[i].name[0] || !f[i].key || !f[i].key[0]) abort();
    if (!json_is_object(f[i].args)) abort();
    if ((f[i].sub == NULL) != (f[i].nsub == 0)) abort();
    check_fields(f[i].sub, f[i].nsub, depth + 1);
  }
}

static void check_filter(const gql_field *f) {
  gql_tx_filter tf;
  vn_err e = {0};
  int single = strcmp(f->name, "transaction") == 0;
  if (gql_tx_filter_from_args(f->args, single, &tf, &e) != 0) {
    if (!e.code || !e.msg[0]) abort();
    return;
  }
  if (tf.first < 0 || tf.first > GQL_MAX_FIRST) abort();
  if (tf.nids > GQL_MAX_LIST || tf.nowners > GQL_MAX_LIST || tf.nrecipients > GQL_MAX_LIST) abort();
  if (tf.ntags > GQL_MAX_TAG_FILTERS) abort();
  if (tf.nids && !tf.has_ids) abort();
  for (size_t i = 0; i < tf.ntags; i++)
    if (!tf.tags[i].name || tf.tags[i].nvalues > GQL_MAX_LIST) abort();
  (void)gql_item_matches(&tf, fixed, "0xd86Dd0047a6067b4eCfC58B48d508bE6b295C2c6");
  gql_tx_filter_clear(&tf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!vars) {
    vars = json_loads(VARIABLES, 0, NULL);
    answer = json_loads(ANSWER, 0, NULL);
    fixed = item_new();
    item_add_tag(fixed, "Type", "Process", NULL);
    item_add_tag(fixed, "Name", "aos", NULL);
    if (!vars || !answer || !fixed) abort();
  }
  if (size < 1) return 0;
  gql_request rq;
  vn_err e = {0};
  int rc;
  if (data[0] & 1)
    rc = gql_parse((const char *)data + 1, size - 1, vars, (data[0] & 2) ? "Q" : NULL, &rq, &e);
  else
    rc = gql_parse_body(data + 1, size - 1, &rq, &e);
  if (rc != 0) {
    if (!e.code || !e.msg[0]) abort();
    if (rq.fields || rq.nfields) abort();
    return 0;
  }
  if (rq.nfields == 0) abort();
  check_fields(rq.fields, rq.nfields, 0);
  for (size_t i = 0; i < rq.nfields; i++) {
    check_filter(&rq.fields[i]);
    json_t *p = gql_project(answer, rq.fields[i].sub, rq.fields[i].nsub);
    if (!p) abort();
    char *s = json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) abort();
    free(s);
    json_decref(p);
  }
  gql_request_clear(&rq);
  return 0;
}
