/* test_config.c - config.yaml, VMNODE_* variables, config_set, dump. */
#include "testutil.h"

#include <unistd.h>

#include "config/config.h"

extern char **environ;

static const char *hymx_key = "0x64dd2342616f385f3e8157cf7246cf394217e13e8f91b7d208e9f8b60e25ed1b";

static char tmpdir[64];

/* Remove every VMNODE_* variable so the host's environment cannot leak in. */
static void clear_env(void) {
  for (;;) {
    char name[256] = "";
    for (char **e = environ; *e; e++)
      if (!strncmp(*e, "VMNODE_", 7)) {
        size_t n = strcspn(*e, "=");
        if (n >= sizeof name) n = sizeof name - 1;
        memcpy(name, *e, n);
        name[n] = 0;
        break;
      }
    if (!name[0]) return;
    unsetenv(name);
  }
}

static int setup(void **state) {
  clear_env();
  return 0;
}

static int group_setup(void **state) {
  strcpy(tmpdir, "/tmp/vn-test-config-XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

#define assert_contains(hay, needle)                                                           \
  do {                                                                                         \
    if (!strstr((hay), (needle))) fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle)); \
  } while (0)

#define assert_not_contains(hay, needle)                                              \
  do {                                                                                \
    if (strstr((hay), (needle))) fail_msg("\"%s\" contains \"%s\"", (hay), (needle)); \
  } while (0)

static int load(config *c, const char *yaml, vn_err *e) {
  vn_err_clear(e);
  return config_load_string(c, yaml, strlen(yaml), "config.yaml", e);
}

static void test_defaults(void **state) {
  config c;
  config_defaults(&c);
  assert_string_equal(c.port, "127.0.0.1:8080");
  assert_string_equal(c.listen_host, "127.0.0.1");
  assert_int_equal(c.listen_port, 8080);
  assert_null(c.prv_key);
  assert_null(c.keyfile_path);
  assert_string_equal(c.node_name, "vmnode");
  assert_string_equal(c.node_desc, "");
  assert_null(c.node_url);
  assert_null(c.hymx_url);
  assert_null(c.arweave_url);
  assert_null(c.redis_url);
  assert_null(c.gin_mode);
  assert_int_equal(c.join_network, 0);
  assert_string_equal(c.data_dir, "./vmnode-data");
  assert_int_equal(c.max_item_size, 10485760);
  assert_int_equal(c.result_wait_ms, 30000);
  assert_string_equal(c.log_format, "logfmt");
  assert_string_equal(c.log_level, "info");
  assert_int_equal(c.npeers, 0);
  assert_null(c.source);
  assert_string_equal(config_base_url(&c), "http://127.0.0.1:8080");
  vn_err e;
  assert_int_equal(config_validate(&c, &e), 0);
  /* Nothing in the environment changes nothing. */
  assert_int_equal(config_load_env(&c, &e), 0);
  assert_string_equal(c.port, "127.0.0.1:8080");
  config_free(&c);
}

static void test_file_every_field(void **state) {
  const char *path = write_file("all.yaml",
                                "# every field\n"
                                "port: \"10.0.0.5:9001\"\n"
                                "keyfilePath: /etc/vmnode/wallet.json\n"
                                "nodeName: alpha\n"
                                "nodeDesc: 'the first node'\n"
                                "nodeURL: https://alpha.example.org/\n"
                                "hymxURL: http://hymx.example.org\n"
                                "arweaveURL: https://arweave.net\n"
                                "joinNetwork: yes\n"
                                "redisURL: redis://localhost:6379/0\n"
                                "ginMode: debug\n"
                                "dataDir: /var/lib/vmnode\n"
                                "maxItemSize: 512KiB\n"
                                "resultWaitMs: 1500\n"
                                "logFormat: json\n"
                                "logLevel: debug\n"
                                "peers:\n"
                                "  - {accId: abc, url: 'http://10.0.0.6:8080', name: beta}\n");
  config c;
  config_defaults(&c);
  vn_err e;
  assert_int_equal(config_load_file(&c, path, 1, &e), 0);
  assert_string_equal(c.port, "10.0.0.5:9001");
  assert_string_equal(c.listen_host, "10.0.0.5");
  assert_int_equal(c.listen_port, 9001);
  assert_null(c.prv_key);
  assert_string_equal(c.keyfile_path, "/etc/vmnode/wallet.json");
  assert_string_equal(c.node_name, "alpha");
  assert_string_equal(c.node_desc, "the first node");
  assert_string_equal(c.node_url, "https://alpha.example.org");
  assert_string_equal(c.hymx_url, "http://hymx.example.org");
  assert_string_equal(c.arweave_url, "https://arweave.net");
  assert_int_equal(c.join_network, 1);
  assert_string_equal(c.redis_url, "redis://localhost:6379/0");
  assert_string_equal(c.gin_mode, "debug");
  assert_string_equal(c.data_dir, "/var/lib/vmnode");
  assert_int_equal(c.max_item_size, 512 * 1024);
  assert_int_equal(c.result_wait_ms, 1500);
  assert_string_equal(c.log_format, "json");
  assert_string_equal(c.log_level, "debug");
  assert_int_equal(c.npeers, 1);
  assert_string_equal(c.peers[0].acc_id, "abc");
  assert_string_equal(c.peers[0].url, "http://10.0.0.6:8080");
  assert_string_equal(c.peers[0].name, "beta");
  assert_string_equal(c.source, path);
  assert_string_equal(config_base_url(&c), "https://alpha.example.org");
  assert_int_equal(config_validate(&c, &e), 0);
  config_free(&c);
}

static void test_hymx_config(void **state) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "port: \":8080\"\n"
           "ginMode: \"release\"\n"
           "redisURL: \"redis://@localhost:6379/0\"\n"
           "arweaveURL: \"https://arweave.net\"\n"
           "hymxURL: \"http://127.0.0.1:8080\"\n"
           "prvKey: \"%s\"\n"
           "keyfilePath: \"\"\n"
           "nodeName: \"test1\"\n"
           "nodeDesc: \"first test node\"\n"
           "nodeURL: \"http://127.0.0.1:8080\"\n"
           "joinNetwork: false\n",
           hymx_key);
  const char *path = write_file("hymx.yaml", yaml);
  config c;
  config_defaults(&c);
  vn_err e;
  assert_int_equal(config_load_file(&c, path, 1, &e), 0);
  assert_string_equal(c.listen_host, "0.0.0.0");
  assert_int_equal(c.listen_port, 8080);
  assert_string_equal(c.prv_key, hymx_key);
  assert_null(c.keyfile_path);
  assert_string_equal(c.gin_mode, "release");
  assert_string_equal(c.redis_url, "redis://@localhost:6379/0");
  assert_string_equal(c.node_name, "test1");
  assert_string_equal(c.node_desc, "first test node");
  assert_string_equal(c.node_url, "http://127.0.0.1:8080");
  assert_int_equal(c.join_network, 0);
  assert_int_equal(config_validate(&c, &e), 0);
  config_free(&c);
}

static void test_unknown_field(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  assert_int_equal(load(&c, "port: \":9000\"\n\nfoo: 1\n", &e), -1);
  assert_string_equal(e.code, "config_unknown_field");
  assert_contains(e.msg, "config.yaml line 3");
  assert_contains(e.msg, "unknown field 'foo'");
  assert_contains(e.msg, "known: port, prvKey");
  /* All or nothing: the good port before the bad field was not applied. */
  assert_string_equal(c.port, "127.0.0.1:8080");

  assert_int_equal(load(&c, "nodeUrl: http://x\n", &e), -1);
  assert_contains(e.msg, "did you mean 'nodeURL'");

  assert_int_equal(config_set(&c, "bogus", "1", &e), -1);
  assert_string_equal(e.code, "config_unknown_field");
  assert_contains(e.msg, "'bogus'");
  config_free(&c);
}

static void test_port(void **state) {
  static const struct {
    const char *in, *host, *base;
    int port;
  } good[] = {
      {":8080", "0.0.0.0", "http://127.0.0.1:8080", 8080},
      {"8080", "0.0.0.0", "http://127.0.0.1:8080", 8080},
      {"127.0.0.1:9", "127.0.0.1", "http://127.0.0.1:9", 9},
      {"0.0.0.0:65535", "0.0.0.0", "http://127.0.0.1:65535", 65535},
      {"localhost:1", "localhost", "http://localhost:1", 1},
      {"[::1]:9000", "::1", "http://[::1]:9000", 9000},
      {"[::]:9000", "::", "http://127.0.0.1:9000", 9000},
  };
  static const char *bad[] = {":0",     ":65536", "abc",    "1.2.3.4:", "",      ":",
                              "::1:80", ":80x",   "a b:80", "[::1]80",  "[]:80", ":99999999999"};
  vn_err e;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    config c;
    config_defaults(&c);
    if (config_set(&c, "port", good[i].in, &e)) fail_msg("%s: %s", good[i].in, e.msg);
    assert_string_equal(c.listen_host, good[i].host);
    assert_int_equal(c.listen_port, good[i].port);
    assert_string_equal(config_base_url(&c), good[i].base);
    config_free(&c);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    config c;
    config_defaults(&c);
    if (config_set(&c, "port", bad[i], &e) == 0) fail_msg("port %s accepted", bad[i]);
    assert_string_equal(e.code, "config_bad_value");
    assert_contains(e.msg, "port: ");
    assert_string_equal(c.port, "127.0.0.1:8080");
    config_free(&c);
  }
  config c;
  config_defaults(&c);
  assert_int_equal(load(&c, "nodeName: x\nport: 70000\n", &e), -1);
  assert_string_equal(e.code, "config_bad_value");
  assert_contains(e.msg, "config.yaml line 2: port: ");
  assert_contains(e.msg, "1..65535");
  config_free(&c);
}

static void test_prv_key(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  assert_int_equal(config_set(&c, "prvKey", hymx_key, &e), 0);
  assert_string_equal(c.prv_key, hymx_key);
  assert_int_equal(config_set(&c, "prvKey", hymx_key + 2, &e), 0); /* no 0x */
  assert_int_equal(config_set(&c, "prvKey", "", &e), 0);           /* unset */
  assert_null(c.prv_key);

  /* Wrong length, bad characters: the message never shows the key. */
  const char *bad[] = {
      "0x64dd2342616f385f3e8157cf7246cf394217e13e8f91b7d208e9f8b60e25ed1",
      "0x64dd2342616f385f3e8157cf7246cf394217e13e8f91b7d208e9f8b60e25ed1bZZ",
      "64dd2342616f385f3e8157cf7246cf394217e13e8f91b7d208e9f8b60e25ed1g",
      "0x64dd2342616f385f3e8157cf7246cf394217e13e8f91b7d208e9f8b60e25ed1b00",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(config_set(&c, "prvKey", bad[i], &e), -1);
    assert_string_equal(e.code, "config_bad_value");
    assert_contains(e.msg, "prvKey: expected 64 hex digits");
    assert_not_contains(e.msg, "64dd");
    assert_not_contains(e.msg, "5ed1");
  }
  char yaml[256];
  snprintf(yaml, sizeof yaml, "prvKey: \"%sff\"\n", hymx_key);
  assert_int_equal(load(&c, yaml, &e), -1);
  assert_contains(e.msg, "config.yaml line 1: prvKey: expected 64 hex digits");
  assert_not_contains(e.msg, "64dd");

  setenv("VMNODE_PRV_KEY", "0x1234", 1);
  assert_int_equal(config_load_env(&c, &e), -1);
  assert_contains(e.msg, "environment VMNODE_PRV_KEY: prvKey: expected 64 hex digits");
  assert_not_contains(e.msg, "1234");
  unsetenv("VMNODE_PRV_KEY");
  assert_null(c.prv_key);
  config_free(&c);
}

static void test_env_over_file(void **state) {
  const char *path = write_file("env.yaml",
                                "port: \":9000\"\nnodeName: fromfile\ndataDir: /data/file\n"
                                "logLevel: warn\n");
  config c;
  config_defaults(&c);
  vn_err e;
  assert_int_equal(config_load_file(&c, path, 1, &e), 0);
  setenv("VMNODE_PORT", "127.0.0.1:9100", 1);
  setenv("VMNODE_NODE_NAME", "fromenv", 1);
  setenv("VMNODE_JOIN_NETWORK", "1", 1);
  setenv("VMNODE_MAX_ITEM_SIZE", "2MiB", 1);
  setenv("VMNODE_RESULT_WAIT_MS", "0", 1);
  setenv("VMNODE_NODE_URL", "http://node.example:9100", 1);
  setenv("VMNODE_DATA_DIR", "", 1);             /* empty = not set */
  setenv("VMNODE_CONFIG", "/whatever.yaml", 1); /* the CLI's */
  setenv("VMNODE_NODE", "http://x:1", 1);       /* the CLI's */
  assert_int_equal(config_load_env(&c, &e), 0);
  assert_string_equal(c.port, "127.0.0.1:9100");
  assert_int_equal(c.listen_port, 9100);
  assert_string_equal(c.node_name, "fromenv");
  assert_int_equal(c.join_network, 1);
  assert_int_equal(c.max_item_size, 2 << 20);
  assert_int_equal(c.result_wait_ms, 0);
  assert_string_equal(c.data_dir, "/data/file");
  assert_string_equal(c.log_level, "warn");
  assert_string_equal(c.source, path);

  /* Every documented variable is known. */
  const char *vars[] = {"VMNODE_KEYFILE_PATH=/k.json", "VMNODE_NODE_DESC=d",
                        "VMNODE_HYMX_URL=http://h",    "VMNODE_ARWEAVE_URL=https://a",
                        "VMNODE_REDIS_URL=redis://r",  "VMNODE_GIN_MODE=test",
                        "VMNODE_LOG_FORMAT=json",      "VMNODE_LOG_LEVEL=error"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) putenv((char *)vars[i]);
  assert_int_equal(config_load_env(&c, &e), 0);
  assert_string_equal(c.keyfile_path, "/k.json");
  assert_string_equal(c.node_desc, "d");
  assert_string_equal(c.hymx_url, "http://h");
  assert_string_equal(c.arweave_url, "https://a");
  assert_string_equal(c.redis_url, "redis://r");
  assert_string_equal(c.gin_mode, "test");
  assert_string_equal(c.log_format, "json");
  assert_string_equal(c.log_level, "error");

  /* A bad value names the variable and leaves c unchanged. */
  setenv("VMNODE_JOIN_NETWORK", "maybe", 1);
  setenv("VMNODE_NODE_NAME", "changed", 1);
  assert_int_equal(config_load_env(&c, &e), -1);
  assert_string_equal(e.code, "config_bad_value");
  assert_contains(e.msg, "environment VMNODE_JOIN_NETWORK: joinNetwork: expected true or false");
  assert_string_equal(c.node_name, "fromenv");
  unsetenv("VMNODE_JOIN_NETWORK");

  /* An unknown VMNODE_ variable is an error naming it. */
  setenv("VMNODE_DATADIR", "/x", 1);
  assert_int_equal(config_load_env(&c, &e), -1);
  assert_string_equal(e.code, "config_unknown_field");
  assert_contains(e.msg, "environment VMNODE_DATADIR: unknown variable");
  assert_string_equal(c.node_name, "fromenv");
  config_free(&c);
  clear_env();
}

static void test_set_over_env(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  assert_int_equal(load(&c, "dataDir: /from/file\n", &e), 0);
  setenv("VMNODE_DATA_DIR", "/from/env", 1);
  assert_int_equal(config_load_env(&c, &e), 0);
  assert_string_equal(c.data_dir, "/from/env");
  assert_int_equal(config_set(&c, config_field_from_flag("data-dir"), "/from/flag", &e), 0);
  assert_string_equal(c.data_dir, "/from/flag");
  assert_int_equal(config_set(&c, "dataDir", "", &e), -1);
  assert_contains(e.msg, "dataDir: must not be empty");
  assert_string_equal(c.data_dir, "/from/flag");
  assert_int_equal(config_set(&c, "peers", "x", &e), -1);
  config_free(&c);
  clear_env();
}

static void test_peers(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  assert_int_equal(load(&c,
                        "peers:\n"
                        "  - accId: 0x972AeD684D6f817e1b58AF70933dF1b4a75bfA51\n"
                        "    url: http://10.0.0.1:8080/\n"
                        "    name: one\n"
                        "  - accId: Xy3Fk\n"
                        "    url: https://two.example\n",
                        &e),
                   0);
  assert_int_equal(c.npeers, 2);
  assert_string_equal(c.peers[0].acc_id, "0x972AeD684D6f817e1b58AF70933dF1b4a75bfA51");
  assert_string_equal(c.peers[0].url, "http://10.0.0.1:8080");
  assert_string_equal(c.peers[0].name, "one");
  assert_string_equal(c.peers[1].acc_id, "Xy3Fk");
  assert_null(c.peers[1].name);

  /* A later file replaces the list. */
  assert_int_equal(load(&c, "peers:\n  - {accId: z, url: 'http://z'}\n", &e), 0);
  assert_int_equal(c.npeers, 1);
  assert_string_equal(c.peers[0].acc_id, "z");

  static const struct {
    const char *yaml, *code, *want;
  } bad[] = {
      {"peers:\n  - accId: a\n", "config_bad_value",
       "line 2: peers[0]: accId and url are required"},
      {"peers:\n  - accId: a\n    url: ftp://a\n", "config_bad_value", "line 3: peers[0].url"},
      {"peers:\n  - accId: a\n    url: http://a\n    color: red\n", "config_unknown_field",
       "unknown field 'color' in peers[0]"},
      {"peers: http://a\n", "config_bad_value", "peers: expected a list"},
      {"peers:\n  - http://a\n", "config_bad_value", "peers[0]: expected a mapping"},
      {"peers:\n  - {accId: a, url: 'http://a'}\n  - {accId: a, url: 'http://b'}\n",
       "config_bad_value", "listed twice"},
      {"peers:\n  - {accId: [a], url: 'http://a'}\n", "config_bad_value",
       "expected a single value"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(load(&c, bad[i].yaml, &e), -1);
    assert_string_equal(e.code, bad[i].code);
    assert_contains(e.msg, bad[i].want);
    assert_int_equal(c.npeers, 1);
  }
  assert_int_equal(load(&c, "peers: []\n", &e), 0);
  assert_int_equal(c.npeers, 0);
  assert_int_equal(load(&c, "peers:\n", &e), 0);
  assert_int_equal(c.npeers, 0);
  config_free(&c);
}

static void test_max_item_size(void **state) {
  static const struct {
    const char *in;
    int64_t want;
  } good[] = {
      {"1048576", 1048576},     {"10MiB", 10485760}, {"10mib", 10485760}, {"10M", 10485760},
      {"10 MiB", 10485760},     {"512KiB", 524288},  {"512k", 524288},    {"1KiB", 1024},
      {"1024", 1024},           {"1GiB", 1 << 30},   {"1g", 1 << 30},     {"2MB", 2000000},
      {"1073741824B", 1 << 30}, {"100kb", 100000},
  };
  static const char *bad[] = {"0",        "1023",   "2GiB",
                              "1025MiB",  "10XB",   "-1",
                              "MiB",      "1.5MiB", "99999999999999999999999",
                              "10 MiB x", ""};
  config c;
  config_defaults(&c);
  vn_err e;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    if (config_set(&c, "maxItemSize", good[i].in, &e)) fail_msg("%s: %s", good[i].in, e.msg);
    assert_int_equal(c.max_item_size, good[i].want);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (config_set(&c, "maxItemSize", bad[i], &e) == 0) fail_msg("maxItemSize %s accepted", bad[i]);
    assert_contains(e.msg, "maxItemSize: ");
  }
  assert_int_equal(c.max_item_size, 100000);
  assert_int_equal(load(&c, "maxItemSize: 4096\n", &e), 0); /* a YAML integer */
  assert_int_equal(c.max_item_size, 4096);
  config_free(&c);
}

static void test_scalars(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  const char *yes[] = {"true", "yes", "1", "TRUE", "Yes"}, *no[] = {"false", "no", "0", "False"};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(config_set(&c, "joinNetwork", yes[i], &e), 0);
    assert_int_equal(c.join_network, 1);
  }
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(config_set(&c, "joinNetwork", no[i], &e), 0);
    assert_int_equal(c.join_network, 0);
  }
  assert_int_equal(config_set(&c, "joinNetwork", "maybe", &e), -1);
  assert_contains(e.msg, "joinNetwork: expected true or false");

  assert_int_equal(config_set(&c, "resultWaitMs", "600000", &e), 0);
  assert_int_equal(c.result_wait_ms, 600000);
  assert_int_equal(config_set(&c, "resultWaitMs", "600001", &e), -1);
  assert_int_equal(config_set(&c, "resultWaitMs", "-1", &e), -1);
  assert_int_equal(config_set(&c, "resultWaitMs", "1s", &e), -1);
  assert_contains(e.msg, "resultWaitMs: expected milliseconds between 0 and 600000");

  assert_int_equal(config_set(&c, "logFormat", "JSON", &e), 0);
  assert_string_equal(c.log_format, "json");
  assert_int_equal(config_set(&c, "logFormat", "xml", &e), -1);
  assert_contains(e.msg, "logFormat: expected logfmt or json");
  assert_int_equal(config_set(&c, "logLevel", "verbose", &e), -1);
  assert_contains(e.msg, "expected debug, info, warn or error");
  assert_int_equal(config_set(&c, "ginMode", "release", &e), 0);
  assert_int_equal(config_set(&c, "ginMode", "prod", &e), -1);
  assert_int_equal(config_set(&c, "ginMode", "", &e), 0);
  assert_null(c.gin_mode);

  assert_int_equal(config_set(&c, "nodeURL", "node.example:8080", &e), -1);
  assert_contains(e.msg, "nodeURL: expected an http:// or https:// URL");
  assert_int_equal(config_set(&c, "nodeURL", "http://", &e), -1);

  /* Null and empty values in YAML. */
  assert_int_equal(load(&c, "nodeURL: http://a:1\nhymxURL: http://h\n", &e), 0);
  assert_int_equal(load(&c, "nodeURL:\nhymxURL: ~\nnodeDesc: null\n", &e), 0);
  assert_null(c.node_url);
  assert_null(c.hymx_url);
  assert_string_equal(c.node_desc, "");
  assert_int_equal(load(&c, "nodeName: ~\n", &e), -1);
  assert_contains(e.msg, "nodeName: must not be empty");
  assert_int_equal(load(&c, "nodeName: \"null\"\n", &e), 0); /* quoted: a string */
  assert_string_equal(c.node_name, "null");
  assert_int_equal(load(&c, "port: [1, 2]\n", &e), -1);
  assert_contains(e.msg, "port: expected a single value, got a list");
  config_free(&c);
}

static void test_yaml_errors(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  assert_int_equal(load(&c, "port: \":9000\"\nnodeName: [unclosed\n", &e), -1);
  assert_string_equal(e.code, "config_bad_file");
  assert_contains(e.msg, "config.yaml line ");
  assert_contains(e.msg, "column ");
  assert_contains(e.msg, "YAML syntax error");

  assert_int_equal(load(&c, "port: 1\n\tnodeName: x\n", &e), -1);
  assert_string_equal(e.code, "config_bad_file");

  assert_int_equal(load(&c, "- a\n- b\n", &e), -1);
  assert_contains(e.msg, "expected a mapping of fields");
  assert_int_equal(load(&c, "just text\n", &e), -1);
  assert_int_equal(load(&c, "port: 1\nport: 2\n", &e), -1);
  assert_contains(e.msg, "line 2: port is given twice (first on line 1)");
  assert_int_equal(load(&c, "port: 1\n---\nport: 2\n", &e), -1);
  assert_contains(e.msg, "second YAML document");
  assert_int_equal(load(&c, "? [a]\n: b\n", &e), -1);

  /* Empty files and comments are fine. */
  assert_int_equal(load(&c, "", &e), 0);
  assert_int_equal(load(&c, "# nothing\n\n", &e), 0);
  assert_int_equal(load(&c, "---\n...\n", &e), 0);
  assert_string_equal(c.port, "127.0.0.1:8080");

  /* Anchors and aliases are plain YAML. */
  assert_int_equal(load(&c, "nodeName: &n same\nnodeDesc: *n\n", &e), 0);
  assert_string_equal(c.node_desc, "same");
  config_free(&c);
}

static void test_missing_file(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  char path[256];
  snprintf(path, sizeof path, "%s/nope.yaml", tmpdir);
  assert_int_equal(config_load_file(&c, path, 0, &e), 0);
  assert_null(c.source);
  assert_int_equal(config_load_file(&c, path, 1, &e), -1);
  assert_string_equal(e.code, "config_bad_file");
  assert_contains(e.msg, "nope.yaml");
  assert_int_equal(config_load_file(&c, tmpdir, 1, &e), -1);
  assert_string_equal(e.code, "config_bad_file");

  /* A file's name appears in its messages. */
  const char *bad = write_file("bad.yaml", "logLevel: loud\n");
  assert_int_equal(config_load_file(&c, bad, 1, &e), -1);
  assert_contains(e.msg, "bad.yaml line 1: logLevel: ");
  config_free(&c);
}

static void test_validate(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  assert_int_equal(config_set(&c, "prvKey", hymx_key, &e), 0);
  assert_int_equal(config_validate(&c, &e), 0);
  assert_int_equal(config_set(&c, "keyfilePath", "/w.json", &e), 0);
  assert_int_equal(config_validate(&c, &e), -1);
  assert_string_equal(e.code, "config_bad_value");
  assert_contains(e.msg, "prvKey and keyfilePath are both set");
  assert_not_contains(e.msg, "64dd");
  assert_int_equal(config_set(&c, "keyfilePath", "", &e), 0);
  assert_int_equal(config_validate(&c, &e), 0);

  assert_int_equal(config_set(&c, "joinNetwork", "true", &e), 0);
  assert_int_equal(config_validate(&c, &e), -1);
  assert_contains(e.msg, "nodeURL");
  assert_int_equal(config_set(&c, "nodeURL", "http://203.0.113.7:8080", &e), 0);
  assert_int_equal(config_validate(&c, &e), 0);
  config_free(&c);
}

static void test_base_url(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  assert_string_equal(config_base_url(&c), "http://127.0.0.1:8080");
  assert_int_equal(config_set(&c, "port", ":9999", &e), 0);
  assert_string_equal(config_base_url(&c), "http://127.0.0.1:9999");
  assert_int_equal(config_set(&c, "port", "192.168.1.4:81", &e), 0);
  assert_string_equal(config_base_url(&c), "http://192.168.1.4:81");
  assert_int_equal(config_set(&c, "port", "0.0.0.0:82", &e), 0);
  assert_string_equal(config_base_url(&c), "http://127.0.0.1:82");
  assert_int_equal(config_set(&c, "nodeURL", "https://node.example/base//", &e), 0);
  assert_string_equal(config_base_url(&c), "https://node.example/base");
  assert_int_equal(config_set(&c, "nodeURL", NULL, &e), 0);
  assert_string_equal(config_base_url(&c), "http://127.0.0.1:82");
  config_free(&c);
}

static char *dump(const config *c) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  config_dump(c, f);
  fclose(f);
  return buf;
}

static void test_dump(void **state) {
  config c;
  config_defaults(&c);
  vn_err e;
  char yaml[512];
  snprintf(yaml, sizeof yaml,
           "prvKey: %s\nnodeDesc: \"quote \\\" backslash \\\\ tab \\t\"\n"
           "redisURL: redis://user:s3cret@redis:6379/1\n"
           "peers:\n  - {accId: a, url: 'http://a', name: n}\n  - {accId: b, url: 'http://b'}\n",
           hymx_key);
  assert_int_equal(load(&c, yaml, &e), 0);
  char *out = dump(&c);
  assert_contains(out, "prvKey: \"<redacted>\"\n");
  assert_not_contains(out, "64dd");
  assert_contains(out, "redisURL: \"redis://user:<redacted>@redis:6379/1\"\n");
  assert_not_contains(out, "s3cret");
  assert_contains(out, "port: \"127.0.0.1:8080\"\n");
  assert_contains(out, "maxItemSize: 10485760\n");
  assert_contains(out, "joinNetwork: false\n");
  assert_contains(out, "nodeURL: null\n");

  /* The dump is YAML that loads back to the same config (once the redacted
   * key is dropped). */
  config d;
  config_defaults(&d);
  char *nokey = strdup(out);
  char *line = strstr(nokey, "prvKey:");
  memcpy(line, "#", 1);
  if (config_load_string(&d, nokey, strlen(nokey), "dump", &e)) fail_msg("%s\n%s", e.msg, nokey);
  assert_string_equal(d.node_desc, "quote \" backslash \\ tab \t");
  assert_string_equal(d.redis_url, "redis://user:<redacted>@redis:6379/1");
  assert_int_equal(d.npeers, 2);
  assert_string_equal(d.peers[1].url, "http://b");
  assert_null(d.peers[1].name);
  assert_int_equal(config_set(&d, "redisURL", c.redis_url, &e), 0);
  assert_int_equal(config_set(&d, "prvKey", c.prv_key, &e), 0);
  char *out2 = dump(&d);
  assert_string_equal(out, out2);
  free(out), free(out2), free(nokey);
  config_free(&d);
  config_free(&c);
}

/* Found by fuzz_config: YAML's escapes \N \L \P (line breaks) and other
 * non-printable characters must be escaped by config_dump, or the dump
 * loads back as something else. */
static void test_dump_escapes(void **state) {
  config c, d;
  config_defaults(&c);
  config_defaults(&d);
  vn_err e;
  const char *yaml =
      "redisURL: \"\\NULLtb\"\nnodeDesc: \"a\\Lb\\Pc\\uFEFFd\\x01e\\x9f\\u00e9\\_\"\n";
  assert_int_equal(load(&c, yaml, &e), 0);
  assert_string_equal(c.redis_url, "\xc2\x85ULLtb");
  char *out = dump(&c);
  if (config_load_string(&d, out, strlen(out), "dump", &e)) fail_msg("%s\n%s", e.msg, out);
  assert_string_equal(d.redis_url, c.redis_url);
  assert_string_equal(d.node_desc, c.node_desc);
  assert_contains(out, "nodeDesc: \"a\\u2028b\\u2029c\\uFEFFd\\u0001e\\u009F\xc3\xa9\xc2\xa0\"");
  /* Bytes that are not UTF-8 (from a flag) dump as U+FFFD. */
  assert_int_equal(config_set(&c, "nodeDesc", "x\xffy", &e), 0);
  free(out);
  out = dump(&c);
  assert_contains(out, "nodeDesc: \"x\\uFFFDy\"");
  free(out);
  config_free(&c);
  config_free(&d);
}

static void test_example_file(void **state) {
  char path[512] = "docs/config.example.yaml";
  if (access(path, R_OK)) {
    /* Run from elsewhere: find docs/ from this source file's path. */
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strstr(path, "tests/unit/");
    if (slash) strcpy(slash, "docs/config.example.yaml");
  }
  config c;
  config_defaults(&c);
  vn_err e;
  if (config_load_file(&c, path, 1, &e)) fail_msg("%s", e.msg);
  assert_int_equal(config_validate(&c, &e), 0);
  assert_int_equal(c.max_item_size, 10485760);
  assert_string_equal(c.gin_mode, "release");
  assert_int_equal(c.npeers, 1);
  assert_null(c.prv_key);
  config_free(&c);
}

static void test_flags(void **state) {
  static const char *map[][2] = {
      {"port", "port"},
      {"prv-key", "prvKey"},
      {"keyfile-path", "keyfilePath"},
      {"node-name", "nodeName"},
      {"node-desc", "nodeDesc"},
      {"node-url", "nodeURL"},
      {"hymx-url", "hymxURL"},
      {"arweave-url", "arweaveURL"},
      {"join-network", "joinNetwork"},
      {"redis-url", "redisURL"},
      {"gin-mode", "ginMode"},
      {"data-dir", "dataDir"},
      {"max-item-size", "maxItemSize"},
      {"result-wait-ms", "resultWaitMs"},
      {"log-format", "logFormat"},
      {"log-level", "logLevel"},
      {"--data-dir", "dataDir"},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    const char *f = config_field_from_flag(map[i][0]);
    assert_non_null(f);
    assert_string_equal(f, map[i][1]);
  }
  assert_null(config_field_from_flag("dataDir"));
  assert_null(config_field_from_flag("node"));
  assert_null(config_field_from_flag("peers"));
  assert_null(config_field_from_flag(""));
  assert_null(config_field_from_flag(NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_defaults, setup),
      cmocka_unit_test_setup(test_file_every_field, setup),
      cmocka_unit_test_setup(test_hymx_config, setup),
      cmocka_unit_test_setup(test_unknown_field, setup),
      cmocka_unit_test_setup(test_port, setup),
      cmocka_unit_test_setup(test_prv_key, setup),
      cmocka_unit_test_setup(test_env_over_file, setup),
      cmocka_unit_test_setup(test_set_over_env, setup),
      cmocka_unit_test_setup(test_peers, setup),
      cmocka_unit_test_setup(test_max_item_size, setup),
      cmocka_unit_test_setup(test_scalars, setup),
      cmocka_unit_test_setup(test_yaml_errors, setup),
      cmocka_unit_test_setup(test_missing_file, setup),
      cmocka_unit_test_setup(test_validate, setup),
      cmocka_unit_test_setup(test_base_url, setup),
      cmocka_unit_test_setup(test_dump, setup),
      cmocka_unit_test_setup(test_dump_escapes, setup),
      cmocka_unit_test_setup(test_example_file, setup),
      cmocka_unit_test_setup(test_flags, setup),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
