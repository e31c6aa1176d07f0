/* test_httpc.c - the HTTP client against a small real server on loopback. */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/httpc.h"

static int srv_fd, srv_port;
static pthread_t srv_thread;
static char base[64];

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

static void respond(int fd, const char *status, const char *extra, const char *body, size_t len) {
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status, len,
                   extra ? extra : "");
  send_all(fd, head, (size_t)n);
  send_all(fd, body, len);
}

/* Value of header name in the request head, or "(none)". */
static void header(const char *head, const char *name, char *out, size_t n) {
  snprintf(out, n, "(none)");
  for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
    size_t nl = strlen(name);
    if (!strncasecmp(p + 2, name, nl) && p[2 + nl] == ':') {
      const char *v = p + 3 + nl;
      while (*v == ' ') v++;
      snprintf(out, n, "%.*s", (int)strcspn(v, "\r"), v);
      return;
    }
  }
}

static void handle(int fd) {
  static char req[1 << 16];
  size_t got = 0;
  char *end = NULL;
  while (!end && got < sizeof req - 1) {
    ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
    if (r <= 0) return;
    got += (size_t)r;
    req[got] = 0;
    end = strstr(req, "\r\n\r\n");
  }
  if (!end) return;
  char method[16], path[256], ct[128], xt[64], cl[32];
  if (sscanf(req, "%15s %255s", method, path) != 2) return;
  *end = 0;
  header(req, "Content-Type", ct, sizeof ct);
  header(req, "X-Test", xt, sizeof xt);
  header(req, "Content-Length", cl, sizeof cl);
  size_t want = strcmp(cl, "(none)") ? (size_t)atol(cl) : 0, have = got - (size_t)(end + 4 - req);
  char *body = end + 4;
  while (have < want && got < sizeof req - 1) {
    ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
    if (r <= 0) break;
    got += (size_t)r;
    have += (size_t)r;
  }
  if (!strcmp(path, "/hello")) {
    respond(fd, "200 OK", "Content-Type: text/plain\r\n", "hello", 5);
  } else if (!strcmp(path, "/echo")) {
    char out[1024];
    int n = snprintf(out, sizeof out, "%s ct=%s x=%s len=%zu body=%.*s", method, ct, xt, have,
                     (int)have, body);
    respond(fd, "200 OK", "Content-Type: application/json\r\n", out, (size_t)n);
  } else if (!strcmp(path, "/redirect")) {
    respond(fd, "308 Permanent Redirect", "Location: http://127.0.0.1:9/elsewhere\r\n", "{}", 2);
  } else if (!strcmp(path, "/rel")) {
    respond(fd, "308 Permanent Redirect", "Location: /other\r\n", "", 0);
  } else if (!strcmp(path, "/created")) {
    respond(fd, "201 Created", "Location: /things/1\r\n", "", 0);
  } else if (!strcmp(path, "/big")) {
    char big[2000];
    memset(big, 'b', sizeof big);
    respond(fd, "200 OK", NULL, big, sizeof big);
  } else if (!strcmp(path, "/stream")) {
    /* No Content-Length: the size is known only while reading. */
    const char *h = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    send_all(fd, h, strlen(h));
    char chunk[500];
    memset(chunk, 's', sizeof chunk);
    for (int i = 0; i < 6; i++) send_all(fd, chunk, sizeof chunk);
  } else if (!strcmp(path, "/slow")) {
    usleep(800 * 1000);
    respond(fd, "200 OK", NULL, "late", 4);
  } else if (!strcmp(path, "/close")) {
    /* close without a word */
  } else if (!strcmp(path, "/missing")) {
    respond(fd, "404 Not Found", "Content-Type: application/json\r\n", "null", 4);
  } else {
    respond(fd, "400 Bad Request", NULL, "?", 1);
  }
}

static void *serve(void *arg) {
  for (;;) {
    int fd = accept(srv_fd, NULL, NULL);
    if (fd < 0) return NULL; /* listening socket shut down */
    handle(fd);
    close(fd);
  }
}

static int group_setup(void **state) {
  srv_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  if (bind(srv_fd, (struct sockaddr *)&a, sizeof a) || listen(srv_fd, 16) ||
      getsockname(srv_fd, (struct sockaddr *)&a, &alen))
    return -1;
  srv_port = ntohs(a.sin_port);
  snprintf(base, sizeof base, "http://127.0.0.1:%d", srv_port);
  return pthread_create(&srv_thread, NULL, serve, NULL);
}

static int group_teardown(void **state) {
  shutdown(srv_fd, SHUT_RDWR);
  pthread_join(srv_thread, NULL);
  close(srv_fd);
  return 0;
}

static char *url(const char *path) {
  static char u[128];
  snprintf(u, sizeof u, "%s%s", base, path);
  return u;
}

static void test_get(void **state) {
  httpc_resp r;
  vn_err e;
  assert_int_equal(httpc_request("GET", url("/hello"), NULL, NULL, 0, &r, 5000, &e), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.len, 5);
  assert_string_equal(r.body, "hello");
  assert_string_equal(r.content_type, "text/plain");
  assert_null(r.location);
  httpc_resp_free(&r);
  assert_null(r.body);
  httpc_resp_free(&r); /* twice is fine */

  assert_int_equal(httpc_request(NULL, url("/missing"), NULL, NULL, 0, &r, 5000, &e), 0);
  assert_int_equal(r.status, 404);
  assert_string_equal(r.body, "null");
  httpc_resp_free(&r);

  assert_int_equal(httpc_request("GET", url("/rel"), NULL, NULL, 0, &r, 0, &e), 0);
  assert_int_equal(r.len, 0);
  assert_string_equal(r.body, "");
  httpc_resp_free(&r);
}

static void test_post(void **state) {
  httpc_resp r;
  vn_err e;
  const uint8_t item[] = {'a', 'b', 0, 'c'};
  assert_int_equal(
      httpc_request("POST", url("/echo"), "application/octet-stream", item, 3, &r, 5000, &e), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "POST ct=application/octet-stream x=(none) len=3 body=ab");
  httpc_resp_free(&r);

  /* No content type given: none is sent (not a guessed form encoding). */
  assert_int_equal(
      httpc_request("POST", url("/echo"), NULL, (const uint8_t *)"{}", 2, &r, 5000, &e), 0);
  assert_string_equal(r.body, "POST ct=(none) x=(none) len=2 body={}");
  httpc_resp_free(&r);

  const char *hdrs[] = {"X-Test: yes", NULL};
  httpc_req req = {.method = "PUT", .url = url("/echo"), .headers = hdrs, .timeout_ms = 5000};
  assert_int_equal(httpc_do(&req, &r, &e), 0);
  assert_string_equal(r.body, "PUT ct=(none) x=yes len=0 body=");
  httpc_resp_free(&r);

  req = (httpc_req){.method = "DELETE", .url = url("/echo"), .timeout_ms = 5000};
  assert_int_equal(httpc_do(&req, &r, &e), 0);
  assert_string_equal(r.body, "DELETE ct=(none) x=(none) len=0 body=");
  httpc_resp_free(&r);
}

static void test_no_follow(void **state) {
  httpc_resp r;
  vn_err e;
  assert_int_equal(httpc_request("GET", url("/redirect"), NULL, NULL, 0, &r, 5000, &e), 0);
  assert_int_equal(r.status, 308);
  assert_string_equal(r.location, "http://127.0.0.1:9/elsewhere");
  assert_string_equal(r.body, "{}");
  httpc_resp_free(&r);

  assert_int_equal(httpc_request("GET", url("/rel"), NULL, NULL, 0, &r, 5000, &e), 0);
  char want[128];
  snprintf(want, sizeof want, "%s/other", base);
  assert_string_equal(r.location, want); /* made absolute */
  httpc_resp_free(&r);

  assert_int_equal(httpc_request("POST", url("/created"), NULL, NULL, 0, &r, 5000, &e), 0);
  assert_int_equal(r.status, 201);
  assert_non_null(r.location);
  assert_non_null(strstr(r.location, "/things/1"));
  httpc_resp_free(&r);
}

static void test_unreachable(void **state) {
  /* A port nobody listens on: bind one, note it, close it. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  getsockname(fd, (struct sockaddr *)&a, &alen);
  close(fd);
  char u[128], origin[64];
  snprintf(origin, sizeof origin, "http://127.0.0.1:%d", ntohs(a.sin_port));
  snprintf(u, sizeof u, "%s/result/abc?x=1", origin);

  httpc_resp r;
  vn_err e;
  memset(&r, 0x55, sizeof r);
  assert_int_equal(httpc_request("GET", u, NULL, NULL, 0, &r, 5000, &e), -1);
  assert_string_equal(e.code, "node_unreachable");
  char want[256];
  snprintf(want, sizeof want, "cannot reach node at %s (Connection refused)", origin);
  if (!strstr(e.msg, want)) fail_msg("%s", e.msg);
  assert_non_null(strstr(e.msg, "set --node or VMNODE_NODE"));
  assert_null(strstr(e.msg, "/result")); /* the origin, not the path */
  assert_null(r.body);                   /* zeroed on failure */
  assert_int_equal(r.status, 0);

  assert_int_equal(httpc_request("GET", url("/close"), NULL, NULL, 0, &r, 5000, &e), -1);
  assert_string_equal(e.code, "node_unreachable");

  assert_int_equal(httpc_request("GET", "ftp://127.0.0.1/x", NULL, NULL, 0, &r, 5000, &e), -1);
  assert_string_equal(e.code, "bad_url");
  assert_int_equal(httpc_request("GET", "http://[bad", NULL, NULL, 0, &r, 5000, &e), -1);
  assert_string_equal(e.code, "bad_url");
}

static void test_limits(void **state) {
  httpc_resp r;
  vn_err e;
  httpc_req req = {.url = url("/big"), .timeout_ms = 5000, .max_size = 1000};
  assert_int_equal(httpc_do(&req, &r, &e), -1);
  assert_string_equal(e.code, "response_too_large");
  req.url = url("/stream");
  assert_int_equal(httpc_do(&req, &r, &e), -1);
  assert_string_equal(e.code, "response_too_large");
  req.max_size = 3000; /* exactly the size: fine */
  assert_int_equal(httpc_do(&req, &r, &e), 0);
  assert_int_equal(r.len, 3000);
  httpc_resp_free(&r);
  req.url = url("/big");
  req.max_size = 0; /* the 64 MiB default */
  assert_int_equal(httpc_do(&req, &r, &e), 0);
  assert_int_equal(r.len, 2000);
  httpc_resp_free(&r);

  assert_int_equal(httpc_request("GET", url("/slow"), NULL, NULL, 0, &r, 200, &e), -1);
  assert_string_equal(e.code, "node_timeout");
  assert_non_null(strstr(e.msg, "did not answer within 200 ms"));
  usleep(900 * 1000); /* let the server finish with the slow request */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get),       cmocka_unit_test(test_post),
      cmocka_unit_test(test_no_follow), cmocka_unit_test(test_unreachable),
      cmocka_unit_test(test_limits),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
