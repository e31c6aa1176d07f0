/* config.h - node configuration: embedded defaults < config.yaml <
 * VMNODE_<FIELD> environment variables < command-line flags.
 *
 * Field names follow hymx's config.yaml (port, prvKey, keyfilePath, nodeName,
 * nodeDesc, nodeURL, hymxURL, arweaveURL, joinNetwork, redisURL, ginMode) plus
 * vmnode's own (dataDir, maxItemSize, resultWaitMs, logFormat, logLevel, peers).
 * Env names are VMNODE_ + the field upper-cased with underscores between
 * words: prvKey -> VMNODE_PRV_KEY, dataDir -> VMNODE_DATA_DIR, nodeURL ->
 * VMNODE_NODE_URL. Unknown fields and bad values are errors naming the field
 * ("config_unknown_field", "config_bad_value"). */
#ifndef VN_CONFIG_H
#define VN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

typedef struct config_peer {
  char *acc_id, *url, *name;
} config_peer;

typedef struct config {
  char *port;         /* ":8080" or "127.0.0.1:8080" or "8080"; see listen_host/listen_port */
  char *listen_host;  /* derived from port: "0.0.0.0" = all interfaces (":8080", "8080"),
                         default "127.0.0.1"; an IPv6 host ("[::1]:8080") without brackets */
  int listen_port;    /* derived from port */
  char *prv_key;      /* hex secp256k1 (0x optional) or NULL */
  char *keyfile_path; /* Arweave JWK path or NULL */
  char *node_name, *node_desc, *node_url, *hymx_url, *arweave_url, *redis_url, *gin_mode;
  int join_network;
  char *data_dir;        /* default "./vmnode-data" */
  int64_t max_item_size; /* bytes accepted on POST /, default 10 MiB */
  int result_wait_ms;    /* how long GET /result waits for a result, default 30000 */
  int lua_timeout_ms;    /* wall clock per Lua message before its worker is killed (10000) */
  int64_t lua_memory_limit; /* a Lua process's memory when its module sets none (256 MiB) */
  int vm_idle_ms;        /* a VM unused this long is closed (rebuilt on its next message);
                            0 = never; default 600000 */
  char *log_format;      /* "logfmt" | "json" */
  char *log_level;       /* "debug" | "info" | "warn" | "error" */
  config_peer *peers;    /* other nodes known to this one (registry seed) */
  size_t npeers;
  char *source;   /* path of the file loaded, or NULL */
  char *base_url; /* derived from port: what config_base_url returns when nodeURL is
                     unset; use config_base_url() rather than this field */
} config;

/* Fill with the embedded defaults (c's old contents are not freed). */
void config_defaults(config *c);
/* Merge a YAML file over c. A missing file is an error only if required.
 * On error c is unchanged. Sets c->source to path when the file was read. */
int config_load_file(config *c, const char *path, int required, vn_err *err);
/* Same, from a buffer (need not be NUL-terminated); name is used in messages
 * ("<name> line 3: ...") and may be NULL ("config.yaml"). Does not set source. */
int config_load_string(config *c, const char *yaml, size_t len, const char *name, vn_err *err);
/* Merge VMNODE_* variables from environ over c. An unknown VMNODE_* variable
 * (other than VMNODE_CONFIG and VMNODE_NODE, which the CLI reads) is an
 * error. On error c is unchanged. */
int config_load_env(config *c, vn_err *err);
/* Set one field by its config name (used by flags, e.g. --port :9000 ->
 * config_set(c, "port", ":9000")). Validates and derives (port -> listen_*).
 * NULL or "" unsets an optional field (prvKey, keyfilePath, nodeURL, ...).
 * "peers" can only be set from a file. On error the field is unchanged. */
int config_set(config *c, const char *field, const char *value, vn_err *err);
/* Checks cross-field rules (e.g. prvKey and keyfilePath both set). */
int config_validate(const config *c, vn_err *err);
void config_free(config *c);
/* The node's base URL for clients, without a trailing slash: nodeURL when
 * set, else http://<host>:<port> when port names a host other than 0.0.0.0
 * or ::, else http://127.0.0.1:<port>. Owned by c. */
const char *config_base_url(const config *c);
/* Print the effective config as YAML (prvKey and a redisURL password
 * redacted as "<redacted>") to f. */
void config_dump(const config *c, FILE *f);

/* The config field a command-line flag sets: "data-dir" -> "dataDir",
 * "prv-key" -> "prvKey", "node-url" -> "nodeURL" (a leading "--" is
 * allowed). NULL when no field has that flag. The CLI then calls
 * config_set(c, field, value, err). */
const char *config_field_from_flag(const char *flag);

#endif
