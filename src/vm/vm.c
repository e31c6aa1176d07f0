/* vm.c - registry of VM backends by module format. */
#include "vm/vm.h"

#include <pthread.h>
#include <string.h>

#define VM_MAX_FORMATS 32

static struct {
  const char *format;
  const vm_ops *ops;
} g_formats[VM_MAX_FORMATS];
static int g_nformats;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

int vm_register(const char *format, const vm_ops *ops) {
  pthread_mutex_lock(&g_lock);
  for (int i = 0; i < g_nformats; i++) {
    if (strcmp(g_formats[i].format, format) == 0) {
      g_formats[i].ops = ops;
      pthread_mutex_unlock(&g_lock);
      return 0;
    }
  }
  if (g_nformats == VM_MAX_FORMATS) {
    pthread_mutex_unlock(&g_lock);
    return -1;
  }
  g_formats[g_nformats].format = format;
  g_formats[g_nformats].ops = ops;
  g_nformats++;
  pthread_mutex_unlock(&g_lock);
  return 0;
}

const vm_ops *vm_find(const char *format) {
  if (!format) return NULL;
  const vm_ops *r = NULL;
  pthread_mutex_lock(&g_lock);
  for (int i = 0; i < g_nformats; i++)
    if (strcmp(g_formats[i].format, format) == 0) r = g_formats[i].ops;
  pthread_mutex_unlock(&g_lock);
  return r;
}

void vm_each_format(void (*fn)(void *ctx, const char *format, const vm_ops *ops), void *ctx) {
  pthread_mutex_lock(&g_lock);
  int n = g_nformats;
  pthread_mutex_unlock(&g_lock);
  for (int i = 0; i < n; i++) fn(ctx, g_formats[i].format, g_formats[i].ops);
}

void vm_register_builtins(void) {
  vm_register(VM_ECHO_FORMAT, &vm_echo_ops);
  vm_register(VM_LUA_FORMAT, &vm_lua_ops);
}

json_t *vm_result_new(void) {
  return json_pack("{s:[],s:[],s:[],s:s,s:s,s:{},s:n}", "Messages", "Spawns", "Assignments",
                   "Output", "", "Data", "", "Cache", "Error");
}
