/* vm.h - the VM interface: how the node drives a process's virtual machine.
 *
 * Mirrors hymx's vmm schema (PROTOCOL.md §2): Spawn, Apply, Checkpoint,
 * Restore, Close. A runtime (`vm_ops`) is mounted for one or more module
 * formats; the node picks it by the module's `Module-Format` tag. Meta and
 * Result are JSON objects (jansson) with exactly the hymx field names, so a
 * backend that speaks JSON over a wire (containers, microVMs) passes them
 * through unchanged.
 *
 * Threading: one vm instance is used by one thread at a time (the node's
 * executor serialises calls per process). Different instances may run in
 * parallel. */
#ifndef VN_VM_H
#define VN_VM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "item/item.h"

typedef enum vm_mode {
  VM_APPLY = 0, /* normal execution: the result is stored, the outbox delivered */
  VM_REPLAY,    /* rebuilding state from the log: result compared or dropped, no outbox */
  VM_DRYRUN,    /* read-only evaluation: nothing persists, state must not change */
} vm_mode;

/* What a VM is spawned from. Items are borrowed for the call only. */
typedef struct vm_spawn_args {
  const char *pid;
  const item *process; /* the spawn item (Type=Process) */
  const item *module;  /* the module item (Type=Module) */
  const char *owner;   /* address of the process's signer */
  json_t *env;         /* Env JSON (PROTOCOL.md §2), borrowed */
} vm_spawn_args;

/* One message to apply. */
typedef struct vm_msg {
  const item *msg;  /* the message item (for nonce 0: the spawn item) */
  const char *from; /* From-Process, or the signer's address */
  json_t *meta;     /* Meta JSON, borrowed */
  vm_mode mode;
} vm_msg;

typedef struct vm vm; /* a running instance; backends embed this first */

/* Error code of an apply that found its VM already dead before the message
 * reached it (a worker killed while idle): the message is not to blame; the
 * node rebuilds the VM and applies the message again. */
#define VM_ERR_GONE "vm_gone"

typedef struct vm_ops {
  const char *name; /* backend name for logs: "echo", "lua", "container" */
  /* Create the instance; *out owned by the caller, released with close. */
  int (*spawn)(const vm_spawn_args *a, vm **out, vn_err *err);
  /* Apply a message. On success *result is a new JSON object with Result
   * fields (Messages, Spawns, Assignments, Output, Data, Cache, Error). An
   * error *inside* the process is a result with Error set, not a failure;
   * -1 means the VM itself is broken (crashed worker, dead container). */
  int (*apply)(vm *v, const vm_msg *m, json_t **result, vn_err *err);
  /* Opaque state between two messages; *state malloc'd. */
  int (*checkpoint)(vm *v, char **state, size_t *len, vn_err *err);
  int (*restore)(vm *v, const char *state, size_t len, vn_err *err);
  void (*close)(vm *v);
} vm_ops;

struct vm {
  const vm_ops *ops;
};

/* Mount a backend for a module format. Formats are matched exactly. */
int vm_register(const char *format, const vm_ops *ops);
/* The backend for a format, or NULL. */
const vm_ops *vm_find(const char *format);
/* Iterate mounted formats (for GET /modules and `vmnode module formats`). */
void vm_each_format(void (*fn)(void *ctx, const char *format, const vm_ops *ops), void *ctx);
/* Register the built-in backends (echo now; lua, container, microvm later). */
void vm_register_builtins(void);

/* The built-in test VM: echoes each message back, deterministically. */
#define VM_ECHO_FORMAT "vmnode.echo.v1"
extern const vm_ops vm_echo_ops;

/* ---- the Lua backend (lua.c): AO processes in sandboxed Lua workers ---- */
#define VM_LUA_FORMAT "vmnode.lua.ao.v1"
#define VM_LUA_MEM_DEFAULT ((uint64_t)256 << 20) /* Memory-Limit when the module has none */
#define VM_LUA_MEM_MAX ((uint64_t)1 << 30)       /* no module gets more */
#define VM_LUA_GAS_DEFAULT 100000000ULL          /* Compute-Limit (instructions per message) */
extern const vm_ops vm_lua_ops;

typedef struct vm_lua_cfg {
  int lazy;           /* 1 = start the zygote at the first spawn, not in vm_lua_init */
  int pool;           /* workers forked ahead; 0 = 2 */
  int timeout_ms;     /* wall clock per message; 0 = 10000 */
  unsigned ns;        /* SBX_NS_* namespaces to try (0 = none) */
  int no_seccomp;     /* debugging only */
  uint64_t mem_cap;   /* default Memory-Limit; 0 = VM_LUA_MEM_DEFAULT */
  uint64_t mem_cap_max; /* ceiling for any module; 0 = VM_LUA_MEM_MAX */
  uint64_t gas;       /* default Compute-Limit; 0 = VM_LUA_GAS_DEFAULT */
} vm_lua_cfg;

/* Configure the backend; start its zygote now unless cfg->lazy. Without a
 * call, the first spawn starts it with the defaults (all namespaces). The
 * executable must call sbx_zygote_main() first thing in main(). */
int vm_lua_init(const vm_lua_cfg *cfg, vn_err *err);
void vm_lua_shutdown(void); /* close every Lua VM first */
/* What the sandbox could not apply here ("" = everything), NULL before start. */
const char *vm_lua_note(void);
pid_t vm_lua_worker_pid(vm *v); /* the worker behind a Lua VM (tests, benches) */
const char *vm_lua_runtime_hash(void); /* SHA-256 (hex) of the embedded AO library */
/* "256-mb", "1-gb", "65536" -> bytes (0 when unreadable). */
uint64_t vm_lua_parse_size(const char *s);
/* Host functions for the Lua workers (the C JSON codec, lua_host.c): give
 * it to sbx_zygote_main as sbx_hooks.open_libs. Without it the library uses
 * its Lua codec (same output, about 4x slower per message). */
struct lua_State;
void vm_lua_open_host(struct lua_State *L);
/* The built-in module item (Module-Format vmnode.lua.ao.v1), signed by key. */
item *vm_lua_module_item(const item_key *key, vn_err *err);

/* A fresh Result object with every field present and empty. */
json_t *vm_result_new(void);

#endif
