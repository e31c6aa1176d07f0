# vmnode build. `make` builds build/vmnode; `make test` runs every test;
# `make asan` runs the unit and end-to-end tests under ASan/UBSan;
# `make fuzz` runs each libFuzzer target for FUZZ_SECONDS; `make bench`.
CC ?= cc
BUILD ?= build
PKGS = sqlite3 libssl libcrypto libsecp256k1 jansson libmicrohttpd libcurl yaml-0.1 lua5.4 libseccomp
CFLAGS ?= -O2 -g
# Always added, also when CFLAGS is given on the command line (asan target).
VN_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -fno-strict-aliasing \
          -D_GNU_SOURCE -Isrc $(shell pkg-config --cflags $(PKGS))
ALL_CFLAGS = $(VN_CFLAGS) $(CFLAGS)
# liblua is linked statically: Lua seeds its string hash from its own load
# address, so a shared liblua placed differently (LD_LIBRARY_PATH, a new
# ld.so.cache) would change `pairs` order on replay (docs/worker.md).
LDLIBS += $(filter-out -llua5.4,$(shell pkg-config --libs $(PKGS))) \
          -Wl,-Bstatic -llua5.4 -Wl,-Bdynamic -ldl -lpthread -lm
# Bind every symbol at start: a Lua worker is a fork of the zygote, and lazy
# binding would make each new worker resolve its symbols again (measured:
# the dynamic linker's lookups were the largest cost of a worker's first
# message).
LDLIBS += -Wl,-z,now
FUZZ_SECONDS ?= 30

LIB_SRC := $(filter-out src/cli/main.c,$(wildcard src/*/*.c))
LUA_RUNTIME := $(sort $(wildcard runtime/lua/*.lua))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/lua_runtime.o
CLI_SRC := src/cli/main.c
TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all test unit e2e interop asan fuzz bench clean format tools
all: $(BUILD)/vmnode tools

# Helpers for tests and benches (not installed).
tools: $(BUILD)/loadgen $(BUILD)/crypto_bound $(BUILD)/store_bench $(BUILD)/lua_bench

$(BUILD)/%: bench/%.c $(BUILD)/libvmnode.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libvmnode.a $(LDLIBS)

$(BUILD)/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The AO library is compiled into the binary (tools/embed.c).
$(BUILD)/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -Wall -Wextra -o $@ $< $(shell pkg-config --cflags --libs libcrypto)

$(BUILD)/gen/lua_runtime.c: $(LUA_RUNTIME) $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed $@ $(LUA_RUNTIME)

$(BUILD)/gen/lua_runtime.o: $(BUILD)/gen/lua_runtime.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libvmnode.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/vmnode: $(BUILD)/src/cli/main.o $(BUILD)/libvmnode.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/testutil.h $(BUILD)/libvmnode.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libvmnode.a $(LDLIBS) -lcmocka

unit: $(TEST_BIN) $(BUILD)/vmnode
	@tests/run-unit.sh $(BUILD)

e2e: $(BUILD)/vmnode tools
	@tests/run-e2e.sh $(BUILD)

interop: $(BUILD)/vmnode
	@tests/run-interop.sh $(BUILD)

# The whole suite: unit, end to end, interop, sanitizers, bounded fuzzing.
test:
	@tests/run-all.sh

asan:
	$(MAKE) BUILD=build-asan CC=clang \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" unit e2e

$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) $(BUILD)/gen/lua_runtime.c
	@mkdir -p $(dir $@)
	clang -O1 -g -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -Isrc \
	  $(shell pkg-config --cflags $(PKGS)) -o $@ $< $(LIB_SRC) $(BUILD)/gen/lua_runtime.c $(LDLIBS)

fuzz: $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
	@tests/run-fuzz.sh $(BUILD) $(FUZZ_SECONDS)

bench: $(BUILD)/vmnode tools
	@bench/run.sh $(BUILD)

format:
	clang-format -i $(wildcard src/*/*.[ch] tests/unit/*.[ch] tests/fuzz/*.c)

clean:
	rm -rf build build-asan
