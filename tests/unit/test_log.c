/* test_log.c - logfmt and JSON lines, levels, quoting, threads. */
#include "testutil.h"

#include <jansson.h>
#include <pthread.h>
#include <regex.h>

#include "common/log.h"

static FILE *out;

static int setup(void **state) {
  out = tmpfile();
  return out ? 0 : -1;
}

static int teardown(void **state) {
  log_init(NULL, NULL, NULL, NULL); /* back to stderr before the file goes */
  fclose(out);
  return 0;
}

/* Everything logged so far (malloc'd). */
static char *output(void) {
  fflush(out);
  long n = ftell(out);
  char *buf = malloc((size_t)n + 1);
  rewind(out);
  assert_int_equal(fread(buf, 1, (size_t)n, out), (size_t)n);
  buf[n] = 0;
  fseek(out, 0, SEEK_END);
  return buf;
}

static void assert_matches(const char *s, const char *pattern) {
  regex_t re;
  assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
  int rc = regexec(&re, s, 0, NULL, 0);
  regfree(&re);
  if (rc) fail_msg("\"%s\" does not match /%s/", s, pattern);
}

static void test_logfmt(void **state) {
  vn_err e;
  assert_int_equal(log_init("logfmt", "info", out, &e), 0);
  log_info("serve.listen", "addr=%s port=%d", "127.0.0.1", 8080);
  log_debug("hidden", "x=1");
  log_warn("disk.low", "free=\"%s\"", "3 GiB");
  log_error("bare", NULL);
  vn_log(VN_LOG_INFO, "multi", "msg=\"line one\nline two\" tab=\t");
  char *s = output();
  assert_matches(s,
                 "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                 "level=info event=serve\\.listen addr=127\\.0\\.0\\.1 port=8080\n");
  assert_null(strstr(s, "hidden"));
  assert_non_null(strstr(s, " level=warn event=disk.low free=\"3 GiB\"\n"));
  assert_non_null(strstr(s, " level=error event=bare\n"));
  assert_non_null(strstr(s, " level=info event=multi msg=\"line one\\nline two\" tab=\\t\n"));
  /* Exactly one line per event. */
  int lines = 0;
  for (char *p = s; *p; p++) lines += *p == '\n';
  assert_int_equal(lines, 4);
  free(s);
}

static void test_levels(void **state) {
  vn_err e;
  assert_int_equal(log_init("logfmt", "warn", out, &e), 0);
  assert_false(log_enabled(VN_LOG_INFO));
  assert_true(log_enabled(VN_LOG_WARN));
  log_info("a", "n=1");
  log_warn("b", "n=2");
  log_error("c", "n=3");
  assert_int_equal(log_init(NULL, "debug", out, &e), 0);
  log_debug("d", "n=4");
  char *s = output();
  assert_null(strstr(s, "event=a "));
  assert_non_null(strstr(s, "level=warn event=b n=2"));
  assert_non_null(strstr(s, "level=error event=c n=3"));
  assert_non_null(strstr(s, "level=debug event=d n=4"));
  free(s);

  assert_int_equal(log_init("xml", NULL, out, &e), -1);
  assert_string_equal(e.code, "config_bad_value");
  assert_int_equal(log_init(NULL, "loud", out, &e), -1);
  assert_int_equal(log_level_parse("error"), VN_LOG_ERROR);
  assert_int_equal(log_level_parse("nope"), -1);
}

static json_t *parse_line(const char *line) {
  json_error_t je;
  json_t *j = json_loads(line, 0, &je);
  if (!j) fail_msg("not JSON (%s): %s", je.text, line);
  return j;
}

static void test_json(void **state) {
  vn_err e;
  assert_int_equal(log_init("json", "debug", out, &e), 0);
  log_info("serve.listen", "addr=%s port=%d", "127.0.0.1:8080", 8080);
  log_warn("q",
           "path=\"/a b/c\" quote=\"say \\\"hi\\\"\" back=\"x\\\\y\" nl=\"a\\nb\" flag empty=");
  log_error("ctl", "raw=a\tb bad=\xff\xfe utf8=caf\xc3\xa9 ctl=\x01");
  log_debug("none", NULL);
  log_info("cut", "open=\"never closed");
  char *s = output();

  char *save = NULL, *line = strtok_r(s, "\n", &save);
  json_t *j = parse_line(line);
  assert_matches(json_string_value(json_object_get(j, "ts")),
                 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$");
  assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
  assert_string_equal(json_string_value(json_object_get(j, "event")), "serve.listen");
  assert_string_equal(json_string_value(json_object_get(j, "addr")), "127.0.0.1:8080");
  assert_string_equal(json_string_value(json_object_get(j, "port")), "8080");
  assert_int_equal(json_object_size(j), 5);
  /* ts, level and event come first, in that order. */
  assert_int_equal(strncmp(line, "{\"ts\":\"", 7), 0);
  json_decref(j);

  j = parse_line(line = strtok_r(NULL, "\n", &save));
  assert_string_equal(json_string_value(json_object_get(j, "path")), "/a b/c");
  assert_string_equal(json_string_value(json_object_get(j, "quote")), "say \"hi\"");
  assert_string_equal(json_string_value(json_object_get(j, "back")), "x\\y");
  assert_string_equal(json_string_value(json_object_get(j, "nl")), "a\nb");
  assert_true(json_is_true(json_object_get(j, "flag")));
  assert_string_equal(json_string_value(json_object_get(j, "empty")), "");
  json_decref(j);

  j = parse_line(line = strtok_r(NULL, "\n", &save));
  assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
  assert_string_equal(json_string_value(json_object_get(j, "raw")), "a");
  assert_true(json_is_true(json_object_get(j, "b")));
  assert_string_equal(json_string_value(json_object_get(j, "bad")), "\xef\xbf\xbd\xef\xbf\xbd");
  assert_string_equal(json_string_value(json_object_get(j, "utf8")), "caf\xc3\xa9");
  assert_string_equal(json_string_value(json_object_get(j, "ctl")), "\x01");
  json_decref(j);

  j = parse_line(line = strtok_r(NULL, "\n", &save));
  assert_string_equal(json_string_value(json_object_get(j, "event")), "none");
  assert_int_equal(json_object_size(j), 3);
  json_decref(j);

  j = parse_line(line = strtok_r(NULL, "\n", &save));
  assert_string_equal(json_string_value(json_object_get(j, "open")), "never closed");
  json_decref(j);
  assert_null(strtok_r(NULL, "\n", &save));
  free(s);
}

static void test_long_line(void **state) {
  vn_err e;
  size_t n = 100000;
  char *big = malloc(n + 1);
  memset(big, 'x', n);
  big[n] = 0;
  assert_int_equal(log_init("json", "info", out, &e), 0);
  log_info("big", "v=%s", big);
  assert_int_equal(log_init("logfmt", "info", out, &e), 0);
  log_info("big", "v=%s", big);
  char *s = output();
  char *nl = strchr(s, '\n');
  assert_non_null(nl);
  *nl = 0;
  json_t *j = parse_line(s);
  assert_int_equal(strlen(json_string_value(json_object_get(j, "v"))), n);
  json_decref(j);
  assert_int_equal(strlen(strstr(nl + 1, "v=") + 2), n + 1);
  free(s);
  free(big);
}

static void test_quote(void **state) {
  char b[64];
  assert_string_equal(log_quote("plain", b, sizeof b), "plain");
  assert_string_equal(log_quote("two words", b, sizeof b), "\"two words\"");
  assert_string_equal(log_quote("a=b", b, sizeof b), "\"a=b\"");
  assert_string_equal(log_quote("say \"hi\"\n", b, sizeof b), "\"say \\\"hi\\\"\\n\"");
  assert_string_equal(log_quote("", b, sizeof b), "\"\"");
  assert_string_equal(log_quote(NULL, b, sizeof b), "null");
  char small[12];
  const char *q = log_quote("a long value with spaces", small, sizeof small);
  assert_true(strlen(q) < sizeof small);
  assert_string_equal(q, "\"a long...\"");
  q = log_quote("\"\"\"\"\"\"\"\"", small, sizeof small);
  assert_true(strlen(q) < sizeof small);
  assert_string_equal(q, "\"\\\"\\\"\\\"...\""); /* 11 bytes + NUL */

  /* A quoted value survives the JSON conversion. */
  vn_err e;
  assert_int_equal(log_init("json", "info", out, &e), 0);
  log_info("q", "v=%s w=%s", log_quote("say \"hi\" \\ there", b, sizeof b), log_quote("ok", b, 0));
  char *s = output();
  json_t *j = parse_line(s);
  assert_string_equal(json_string_value(json_object_get(j, "v")), "say \"hi\" \\ there");
  assert_string_equal(json_string_value(json_object_get(j, "w")), "ok");
  json_decref(j);
  free(s);
}

#define THREADS 4
#define PER_THREAD 2000

static void *writer(void *arg) {
  for (int i = 0; i < PER_THREAD; i++)
    log_info("thread.line", "t=%d i=%d pad=%s", (int)(intptr_t)arg, i,
             "0123456789012345678901234567890123456789012345678901234567890123456789");
  return NULL;
}

static void test_threads(void **state) {
  vn_err e;
  assert_int_equal(log_init("json", "info", out, &e), 0);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  char *s = output();
  int count[THREADS] = {0}, lines = 0;
  char *save = NULL;
  for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    json_t *j = parse_line(line);
    int th = atoi(json_string_value(json_object_get(j, "t")));
    int i = atoi(json_string_value(json_object_get(j, "i")));
    assert_in_range(th, 0, THREADS - 1);
    assert_int_equal(i, count[th]); /* each thread's lines in order, none torn */
    count[th]++;
    lines++;
    json_decref(j);
  }
  assert_int_equal(lines, THREADS * PER_THREAD);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_logfmt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quote, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
