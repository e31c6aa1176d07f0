/* json.c - the JSON form of an item (hymx / goar "BundleItem"; also the
 * format of module files):
 *   {"signatureType":3,"signature":"…","owner":"…","target":"","anchor":"",
 *    "tags":[{"name":"…","value":"…"}],"data":"…","id":"…","tagsBy":"…"}
 * Binary fields are base64url without padding; "" means absent / empty.
 *
 * Reading is as strict as item_decode: sizes per signature type, tag limits,
 * and "tagsBy" (the raw Avro bytes that were signed), when present, must
 * decode to exactly the listed tags. Those raw bytes are then kept, so a JSON
 * item re-encodes to the binary item that was signed even when its Avro is
 * not in canonical form. Missing or null "target", "anchor", "tags", "data",
 * "tagsBy" and "id" are read as empty (Go writes a nil slice as null). */
#include <stdlib.h>
#include <string.h>

#include "common/enc.h"
#include "item/internal.h"

/* ---- writing ---- */

static json_t *b64(const uint8_t *p, size_t n) {
  char *s = b64url_encode_alloc(p ? p : (const uint8_t *)"", p ? n : 0);
  if (!s) return NULL;
  json_t *j = json_string(s);
  free(s);
  return j;
}

/* json_object_set_new that remembers a failure (a NULL value or no memory). */
static void put(json_t *o, const char *k, json_t *v, int *bad) {
  if (!v || json_object_set_new(o, k, v) < 0) *bad = 1;
}

json_t *item_to_json(const item *it) {
  json_t *o = json_object(), *tags = json_array();
  int bad = !o || !tags;
  uint8_t *tmp = NULL;
  const uint8_t *tb = it->tag_bytes;
  size_t tbl = it->tag_bytes_len;
  if (!bad && it->ntags && !tb) {
    if (!(tmp = item_avro_encode_tags(it->tags, it->ntags, &tbl))) bad = 1;
    tb = tmp;
  }
  for (size_t i = 0; !bad && i < it->ntags; i++) {
    json_t *t = json_object();
    /* json_stringn validates UTF-8; decoded and built tags are always valid,
     * so a NULL here means memory ran out or someone filled tags by hand. */
    if (!t)
      bad = 1;
    else {
      put(t, "name", json_stringn(it->tags[i].name, it->tags[i].name_len), &bad);
      put(t, "value", json_stringn(it->tags[i].value, it->tags[i].value_len), &bad);
      if (json_array_append_new(tags, t) < 0) bad = 1;
    }
  }
  if (!bad) {
    put(o, "signatureType", json_integer(it->sig_type), &bad);
    put(o, "signature", b64(it->sig, it->sig_len), &bad);
    put(o, "owner", b64(it->owner, it->owner_len), &bad);
    put(o, "target", it->has_target ? b64(it->target, 32) : json_string(""), &bad);
    put(o, "anchor", it->has_anchor ? b64(it->anchor, 32) : json_string(""), &bad);
    put(o, "tags", tags, &bad);
    tags = NULL; /* owned by o now, even on failure */
    put(o, "data", b64(it->data, it->data_len), &bad);
    put(o, "id", json_string(it->id), &bad);
    put(o, "tagsBy", b64(tb, tbl), &bad);
  }
  free(tmp);
  json_decref(tags);
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ---- reading ---- */

/* A base64url member; NULL/missing/"" gives *n = 0 and *out = NULL. want is
 * the required decoded size (0 = any). */
static int get_b64(const json_t *j, const char *key, size_t want, int required, uint8_t **out,
                   size_t *n, vn_err *err) {
  *out = NULL;
  *n = 0;
  const json_t *v = json_object_get(j, key);
  if (!v || json_is_null(v)) {
    if (required) return vn_errf(err, "item_bad_json", "item JSON has no \"%s\"", key);
    return 0;
  }
  if (!json_is_string(v)) return vn_errf(err, "item_bad_json", "\"%s\" must be a string", key);
  size_t sl = json_string_length(v);
  if (sl == 0) {
    if (required) return vn_errf(err, "item_bad_json", "\"%s\" is empty", key);
    return 0;
  }
  *out = b64_decode_alloc(json_string_value(v), sl, n);
  if (!*out) return vn_errf(err, "item_bad_json", "\"%s\" is not base64url", key);
  if (want && *n != want) {
    free(*out);
    *out = NULL;
    return vn_errf(err, "item_bad_json", "\"%s\" decodes to %zu bytes; expected %zu", key, *n,
                   want);
  }
  return 0;
}

static int read_tags(const json_t *arr, item *it, vn_err *err) {
  if (!arr || json_is_null(arr)) return 0;
  if (!json_is_array(arr)) return vn_errf(err, "item_bad_json", "\"tags\" must be an array");
  size_t n = json_array_size(arr);
  if (n > ITEM_MAX_TAGS)
    return vn_errf(err, "item_too_many_tags", "item has %zu tags; the limit is %d", n,
                   ITEM_MAX_TAGS);
  if (n == 0) return 0;
  if (!(it->tags = calloc(n, sizeof *it->tags)))
    return vn_errf(err, "oom", "out of memory reading tags");
  for (size_t i = 0; i < n; i++) {
    const json_t *t = json_array_get(arr, i);
    const json_t *jn = json_object_get(t, "name"), *jv = json_object_get(t, "value");
    if (!json_is_string(jn) || !json_is_string(jv))
      return vn_errf(err, "item_bad_json", "tag %zu needs string \"name\" and \"value\"", i);
    item_tag *d = &it->tags[i];
    size_t nl = json_string_length(jn), vl = json_string_length(jv);
    if (item__check_tag(json_string_value(jn), nl, json_string_value(jv), vl, 0, err) < 0)
      return -1;
    d->name = malloc(nl + 1);
    d->value = malloc(vl + 1);
    it->ntags = i + 1; /* slot i is owned by the item from here on */
    if (!d->name || !d->value) return vn_errf(err, "oom", "out of memory reading tags");
    memcpy(d->name, json_string_value(jn), nl + 1);
    memcpy(d->value, json_string_value(jv), vl + 1);
    d->name_len = nl;
    d->value_len = vl;
  }
  return 0;
}

static int same_tags(const item_tag *a, size_t na, const item_tag *b, size_t nb) {
  if (na != nb) return 0;
  for (size_t i = 0; i < na; i++)
    if (a[i].name_len != b[i].name_len || a[i].value_len != b[i].value_len ||
        memcmp(a[i].name, b[i].name, a[i].name_len) != 0 ||
        memcmp(a[i].value, b[i].value, a[i].value_len) != 0)
      return 0;
  return 1;
}

item *item_from_json(const json_t *j, vn_err *err) {
  if (!json_is_object(j)) {
    vn_errf(err, "item_bad_json", "an item in JSON form is an object");
    return NULL;
  }
  item *it = item_new();
  if (!it) {
    vn_errf(err, "oom", "out of memory reading an item");
    return NULL;
  }
  uint8_t *tmp = NULL;
  size_t tmpn = 0;
  const json_t *st = json_object_get(j, "signatureType");
  if (!json_is_integer(st) || json_integer_value(st) < 0 || json_integer_value(st) > 65535) {
    vn_errf(err, "item_bad_json", "\"signatureType\" must be an integer");
    goto fail;
  }
  it->sig_type = (uint16_t)json_integer_value(st);
  size_t sl, ol;
  if (!item__sig_sizes(it->sig_type, &sl, &ol)) {
    vn_errf(err, "item_bad_signature_type", "unknown signature type %u", it->sig_type);
    goto fail;
  }
  if (get_b64(j, "signature", sl, 1, &it->sig, &it->sig_len, err) < 0) goto fail;
  if (get_b64(j, "owner", ol, 1, &it->owner, &it->owner_len, err) < 0) goto fail;
  if (get_b64(j, "target", 32, 0, &tmp, &tmpn, err) < 0) goto fail;
  if (tmp) item_set_target(it, tmp);
  free(tmp);
  if (get_b64(j, "anchor", 32, 0, &tmp, &tmpn, err) < 0) goto fail;
  if (tmp) item_set_anchor(it, tmp);
  free(tmp);
  tmp = NULL;
  if (get_b64(j, "data", 0, 0, &it->data, &it->data_len, err) < 0) goto fail;
  if (read_tags(json_object_get(j, "tags"), it, err) < 0) goto fail;

  if (get_b64(j, "tagsBy", 0, 0, &tmp, &tmpn, err) < 0) goto fail;
  if (tmp) {
    item_tag *dt = NULL;
    size_t dn = 0;
    if (item_avro_decode_tags(tmp, tmpn, &dt, &dn, err) < 0) {
      vn_err_wrap(err, "tagsBy");
      goto fail;
    }
    int same = dn > 0 && same_tags(dt, dn, it->tags, it->ntags);
    item_tags_free(dt, dn);
    if (!same) {
      vn_errf(err, "item_bad_tags", "\"tagsBy\" does not encode the listed tags");
      goto fail;
    }
    it->tag_bytes = tmp;
    it->tag_bytes_len = tmpn;
    tmp = NULL;
  } else if (it->ntags) {
    if (!(it->tag_bytes = item_avro_encode_tags(it->tags, it->ntags, &it->tag_bytes_len))) {
      vn_errf(err, "oom", "out of memory encoding tags");
      goto fail;
    }
    if (it->tag_bytes_len > ITEM_MAX_TAG_BYTES) {
      vn_errf(err, "item_tags_too_large", "%zu tag bytes; the limit is %d", it->tag_bytes_len,
              ITEM_MAX_TAG_BYTES);
      goto fail;
    }
  }

  item__id_of(it->sig, it->sig_len, it->id);
  const json_t *id = json_object_get(j, "id");
  if (id && !json_is_null(id)) {
    if (!json_is_string(id)) {
      vn_errf(err, "item_bad_json", "\"id\" must be a string");
      goto fail;
    }
    const char *s = json_string_value(id);
    if (*s && strcmp(s, it->id) != 0) {
      vn_errf(err, "item_bad_id", "\"id\" %.64s is not the id of the signature (%s)", s, it->id);
      goto fail;
    }
  }
  return it;
fail:
  free(tmp);
  item_free(it);
  return NULL;
}
