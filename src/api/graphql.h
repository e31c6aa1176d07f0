/* graphql.h - internal to src/api: the part of an Arweave gateway's GraphQL
 * that AO clients use, served on POST /graphql (docs/api.md, "/graphql").
 *
 * Three layers, each usable on its own (the fuzzer drives the first two):
 *   1. gql_parse_body / gql_parse: the request {query, variables,
 *      operationName} and the GraphQL document → a tree of fields whose
 *      arguments are JSON values with every $variable already substituted;
 *   2. gql_tx_filter_from_args: the arguments of transactions(...) /
 *      transaction(id:) → a filter; gql_project: a full JSON value → only the
 *      fields the query selected, under their aliases;
 *   3. api_graphql: the handler, which finds the items in the store.
 *
 * The language subset: one query operation (a document may hold several,
 * picked by operationName), variable definitions with defaults, aliases,
 * arguments, nested selection sets, every literal kind (strings with escapes
 * and block strings, numbers, booleans, null, enums, lists, objects).
 * Fragments, directives, mutations and subscriptions are refused. */
#ifndef VN_API_GRAPHQL_H
#define VN_API_GRAPHQL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/internal.h"
#include "common/err.h"
#include "item/item.h"

#define GQL_MAX_DEPTH 32    /* nesting of selection sets, lists and objects */
#define GQL_MAX_FIELDS 1000 /* fields in one document */
#define GQL_MAX_LIST 100    /* ids, owners, recipients, values of one tag filter */
#define GQL_MAX_TAG_FILTERS 20
#define GQL_DEFAULT_FIRST 10 /* as arweave.net */
#define GQL_MAX_FIRST 100

typedef struct gql_field {
  char *name;            /* the field */
  char *key;             /* the answer's key: the alias, else the name */
  json_t *args;          /* JSON object of the arguments, variables substituted */
  struct gql_field *sub; /* the selection set; NULL (nsub 0) for a leaf */
  size_t nsub;
} gql_field;

typedef struct gql_request {
  gql_field *fields; /* the chosen operation's top-level fields */
  size_t nfields;
} gql_request;

/* Parse an HTTP body {"query":"…","variables":{…}|null,"operationName":…}.
 * 0 on success (free with gql_request_clear), -1 with err set: code
 * "graphql_bad_request" (not that JSON shape) or one of gql_parse's. */
int gql_parse_body(const uint8_t *body, size_t len, gql_request *out, vn_err *err);

/* Parse a document. `variables` (an object, or NULL) fill in $names; a name
 * that neither it nor the operation's defaults hold is null. `op_name` picks
 * the operation when the document has several (NULL: there must be one).
 * Errors: "graphql_syntax", "graphql_unsupported" (fragments, directives,
 * mutations, subscriptions), "graphql_too_large" (the limits above). */
int gql_parse(const char *query, size_t len, const json_t *variables, const char *op_name,
              gql_request *out, vn_err *err);
void gql_request_clear(gql_request *r);

typedef struct gql_tag_filter {
  char *name;
  char **values; /* the tag must have one of these values */
  size_t nvalues;
} gql_tag_filter;

typedef struct gql_tx_filter {
  int has_ids; /* ids given (an empty list matches nothing) */
  char **ids;
  size_t nids;
  char **owners; /* signer addresses; none = any */
  size_t nowners;
  char **recipients; /* targets; none = any */
  size_t nrecipients;
  gql_tag_filter *tags; /* all must match */
  size_t ntags;
  int first;   /* page size, GQL_DEFAULT_FIRST unless given, at most GQL_MAX_FIRST */
  char *after; /* cursor of the previous page's last edge, or NULL */
  int asc;     /* sort: HEIGHT_ASC / INGESTED_AT_ASC (default: newest first) */
} gql_tx_filter;

/* Read the arguments of transactions(...) (single = 0) or transaction(id:)
 * (single = 1: `id` becomes a one-element ids list). Unknown arguments and
 * filters this node cannot honour are refused ("graphql_unsupported");
 * ill-typed ones are "graphql_bad_argument". */
int gql_tx_filter_from_args(const json_t *args, int single, gql_tx_filter *f, vn_err *err);
void gql_tx_filter_clear(gql_tx_filter *f);

/* Whether an item passes the owners, recipients and tags of f (not ids).
 * `owner` is the item's signer address (item_owner_address). */
int gql_item_matches(const gql_tx_filter *f, const item *it, const char *owner);

/* The fields of `value` that `sel` selects, keyed by alias; a field the
 * value lacks is null; lists are projected element by element. A leaf
 * (nsel 0) is the value itself. Returns a new reference (json null for a
 * NULL value). */
json_t *gql_project(const json_t *value, const gql_field *sel, size_t nsel);

/* POST /graphql. Answers 200 {"data":{…}}, or 400 {"errors":[{"message",
 * "extensions":{"code"}}]} for what it cannot serve. */
void api_graphql(api *a, const uint8_t *body, size_t len, api_resp *out);

#endif
