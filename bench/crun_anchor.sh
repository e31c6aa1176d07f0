#!/usr/bin/env bash
# crun_anchor.sh - the container anchor: how long `crun run` of the smallest
# possible OCI bundle takes on this machine (create namespaces + cgroups,
# pivot_root, exec /bin/true, wait, delete). Figures elsewhere (the Lua VM's
# spawn) are read against it, measured in the same run.
#
# The bundle is built from local files only: rootfs/bin/busybox copied from
# Debian's busybox-static, rootfs/bin/true a symlink to it, config.json from
# `crun spec` (root, not rootless) with args ["/bin/true"], no terminal, a
# read-only root. Each run gets its own container name; crun deletes the
# container when the process exits (`crun run` without --detach).
#
# Hybrid cgroups (v1 controllers + a v2 tree at /sys/fs/cgroup/unified
# whose root still lists `hugetlb`): crun 1.8 refuses to start at all there
# ("cgroups in hybrid mode not supported, drop all controllers from
# cgroupv2"), even with --cgroup-manager=disabled, because it classifies
# the cgroup mode before it looks at the manager. Two ways out:
#   a) host-wide: mount hugetlb as a v1 hierarchy, which takes the last
#      controller out of the v2 tree (`mkdir -p /sys/fs/cgroup/hugetlb &&
#      mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb`);
#   b) what this script does, changing nothing on the host: re-exec itself
#      in a private mount namespace (unshare -m) and unmount
#      /sys/fs/cgroup/unified there only. crun then sees a plain cgroup v1
#      machine and uses its cgroupfs manager: the container gets a cgroup
#      in every v1 controller (cpu, memory, pids, ...), as in production.
# When the v2 root lists no controllers (hugetlb already mounted as v1, or a
# pure v2 host) crun is run directly.
#
# Output (one line): crun_run_true: p50=12.3 ms p99=20.1 ms n=30
# or, exit 0:        SKIP: <reason>
# usage: bench/crun_anchor.sh [N]   env: CRUN (crun), BUSYBOX (/bin/busybox)
set -u
N=${1:-30}
CRUN=${CRUN:-crun}
BUSYBOX=${BUSYBOX:-/bin/busybox}

skip() { echo "SKIP: $*"; exit 0; }

# Hybrid when /sys/fs/cgroup is not itself cgroup2 and the v2 tree at
# unified/ still owns a controller (cgroupfs files report size 0: read them).
hybrid() {
  [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ] &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]
}

command -v "$CRUN" >/dev/null || skip "crun not installed (scripts/deps.sh test)"
[ -x "$BUSYBOX" ] || skip "$BUSYBOX missing (Debian busybox-static)"
# Only a static busybox works alone in an empty rootfs.
if command -v readelf >/dev/null && readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'program interpreter'; then
  skip "$BUSYBOX is not static (busybox-static)"
fi
[ "$(id -u)" -eq 0 ] || skip "needs root (rootful crun with cgroups)"

if hybrid && [ -z "${VN_CRUN_NS:-}" ]; then
  command -v unshare >/dev/null || skip "hybrid cgroups and no unshare(1)"
  VN_CRUN_NS=1 exec unshare -m --propagation private "$BASH" "$0" "$@"
fi
if [ -n "${VN_CRUN_NS:-}" ] && hybrid; then
  umount /sys/fs/cgroup/unified 2>/dev/null || skip "hybrid cgroups: cannot unmount the v2 tree in a private mount namespace"
fi

TMP=$(mktemp -d /tmp/vmnode-crun.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/rootfs/bin"
cp "$BUSYBOX" "$TMP/rootfs/bin/busybox"
ln -s busybox "$TMP/rootfs/bin/true"
(cd "$TMP" && "$CRUN" spec) || skip "crun spec failed"
python3 - "$TMP/config.json" <<'EOF' || skip "cannot edit config.json"
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["root"]["readonly"] = True
c["hostname"] = "anchor"
json.dump(c, open(p, "w"))
EOF

name=vn-anchor-$$
# One run outside the timing: it must work, and it warms the page cache.
out=$("$CRUN" run --bundle "$TMP" "$name-w" 2>&1 </dev/null) || skip "crun run failed: $(echo "$out" | head -1)"

# EPOCHREALTIME: bash's own microsecond clock, so no fork is timed but crun's.
for i in $(seq 1 "$N"); do
  t0=$EPOCHREALTIME
  "$CRUN" run --bundle "$TMP" "$name-$i" </dev/null >/dev/null 2>&1 || skip "crun run $i failed"
  t1=$EPOCHREALTIME
  echo "$t0 $t1" >>"$TMP/times"
done
awk '{printf "%.3f\n", ($2 - $1) * 1000}' "$TMP/times" | sort -g | awk '
  { a[NR] = $1 }
  END {
    p50 = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    i = int(0.99 * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
    printf "crun_run_true: p50=%.2f ms p99=%.2f ms n=%d\n", p50, a[i], NR
  }'
