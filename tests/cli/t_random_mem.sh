#!/bin/sh
# tests/cli/t_random_mem.sh - the random-init baseline within the memory a
# process is given. Its layers are kept from the second pass on (here
# `heads --each-line`, a pass per line) only while they fit: half of what the
# OS says is available, or of what is left under a memory cgroup's limit (a
# container's, which /proc/meminfo does not show; its reclaimable page cache
# counted as free); and a layer whose memory cannot be mapped (ulimit -v) is
# made again on each pass instead of failing. cgroup v2's files are also
# shown to it in a mount namespace (where this machine has v1 or none).
# The model (make_seeds.py --wide) is 72 MB on disk; its random init's layers
# are 512 MB of float32. Each case's table must be the unlimited run's. Also:
# `heads` and `report` of one prompt show their progress by layer (seconds on
# this model on the scalar path).
ATTN=${ATTN:-./attn}
PY=${PY:-python3}
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
# two peak RSS figures (KB) within half a layer (32 MB) of each other
near() { [ -n "$1" ] && [ -n "$2" ] && [ $(($1 - $2)) -lt 32768 ] && [ $(($2 - $1)) -lt 32768 ]; }
gnu_time() { /usr/bin/time -f %M true >/dev/null 2>&1; }
if [ -n "$ATTN_SANITIZE" ] || [ -n "$ATTN_EMULATED" ]; then
    echo "SKIP random_mem: ASan's shadow memory and qemu's own reservations do not fit these limits"
    exit 0
fi
tmp=$(mktemp -d)
cg=
trap 'rm -rf "$tmp"; [ -n "$cg" ] && rmdir "$cg" 2>/dev/null' EXIT
if ! $PY tests/fuzz/make_seeds.py --wide $tmp/wide.gguf; then
    fail "random_mem model" "make_seeds.py --wide failed"
    exit 0
fi
printf 'the cat sat on the mat\nhello world the theater\na b a b a b\n' >$tmp/lines.txt
heads="heads -m $tmp/wide.gguf --each-line -f $tmp/lines.txt --format tsv"
if ! $ATTN $heads >$tmp/ref.tsv 2>$tmp/err || [ "$(wc -l <$tmp/ref.tsv)" -ne 65 ]; then
    fail "random_mem unlimited" "$(head -c 300 $tmp/err)"
    exit 0
fi

# one prompt's two forwards (the model's, then the random init's) take seconds
# on the scalar path: a progress line by layer on stderr, stdout unchanged
start=$(date +%s)
ATTN_PROGRESS=1 ATTN_SIMD=scalar $ATTN heads -m $tmp/wide.gguf -p "the cat sat on the mat" -t 1 >$tmp/p.out 2>$tmp/p.err
rc=$?
secs=$(( $(date +%s) - start ))
ATTN_PROGRESS=0 $ATTN heads -m $tmp/wide.gguf -p "the cat sat on the mat" >$tmp/q.out 2>/dev/null
last=$(tr '\r' '\n' <$tmp/p.err | tail -1)
steps=$(tr '\r' '\n' <$tmp/p.err | grep -c '^heads: layers: [0-9]*/16')
if [ $rc -eq 0 ] && [ "$last" = "heads: layers: 16/16 done" ] && [ "$steps" -ge 2 ] && cmp -s $tmp/p.out $tmp/q.out; then
    pass "heads on one prompt: progress by layer on stderr ($steps steps of 16 over ${secs} s), the same table"
elif [ $rc -eq 0 ] && [ ! -s $tmp/p.err ] && [ $secs -lt 2 ] && cmp -s $tmp/p.out $tmp/q.out; then
    echo "SKIP heads progress: the scalar forwards took under 2 s here, too quick for a progress line"
else fail "heads progress" "rc $rc, ${secs} s, last line '$last', $steps steps; stderr: $(head -c 200 $tmp/p.err)"; fi

start=$(date +%s)
ATTN_PROGRESS=1 ATTN_SIMD=scalar $ATTN report -m $tmp/wide.gguf -p "the cat sat on the mat" -t 1 -o $tmp/r.html >/dev/null 2>$tmp/p.err
rc=$?
secs=$(( $(date +%s) - start ))
last=$(tr '\r' '\n' <$tmp/p.err | grep -v '^attn: wrote' | tail -1)
if [ $rc -eq 0 ] && [ "$last" = "report: layers: 16/16 done" ] && [ -s $tmp/r.html ]; then
    pass "report: progress by layer on stderr over its two forwards"
elif [ $rc -eq 0 ] && ! grep -q "report: layers" $tmp/p.err && [ $secs -lt 2 ]; then
    echo "SKIP report progress: the scalar forwards took under 2 s here, too quick for a progress line"
else fail "report progress" "rc $rc, ${secs} s, last line '$last'; stderr: $(head -c 200 $tmp/p.err)"; fi

# an address-space limit of 400 MB: the 512 MB of layers cannot all be mapped
sh -c "ulimit -v 400000; exec $ATTN $heads" >$tmp/v.tsv 2>$tmp/err
rc=$?
if [ $rc -eq 0 ] && cmp -s $tmp/v.tsv $tmp/ref.tsv; then
    pass "random init under ulimit -v 400 MB (512 MB of layers): layers that cannot be mapped made per pass, the same table"
else fail "random init under ulimit -v" "rc $rc: $(head -c 300 $tmp/err)"; fi

# a memory cgroup of 400 MB (cgroup v1's memory controller, or v2's): needs
# root and a cgroup file system that lets it make a child
own=$(sed -n 's/^[0-9]*:[^:]*memory[^:]*:\(.*\)$/\1/p' /proc/self/cgroup | head -1)
if [ -n "$own" ] && [ -d /sys/fs/cgroup/memory ]; then
    base=/sys/fs/cgroup/memory$own lim=memory.limit_in_bytes
    [ -d "$base" ] || base=/sys/fs/cgroup/memory
else
    own=$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup | head -1)
    base=/sys/fs/cgroup$own lim=memory.max
    [ -d "$base" ] || base=/sys/fs/cgroup
fi
if mkdir "$base/attn-test-$$" 2>/dev/null; then
    cg=$base/attn-test-$$
    [ -e "$cg/$lim" ] || { echo +memory >"$base/cgroup.subtree_control"; } 2>/dev/null
fi
if [ -z "$cg" ] || ! echo 400000000 >"$cg/$lim" 2>/dev/null; then
    echo "SKIP random init in a 400 MB memory cgroup: cannot make a memory cgroup under $base (not root, or none delegated)"
else
    sh -c "echo \$\$ >$cg/cgroup.procs && exec $ATTN $heads" >$tmp/c.tsv 2>$tmp/err
    rc=$?
    if [ $rc -eq 0 ] && cmp -s $tmp/c.tsv $tmp/ref.tsv; then
        pass "random init in a 400 MB memory cgroup (512 MB of layers): kept within its limit, the same table"
    else fail "random init in a memory cgroup" "rc $rc (137: killed for memory): $(head -c 300 $tmp/err)"; fi
    # the cgroup's usage counts the page cache of files written in it, which
    # the kernel takes back when it needs to: 300 MB of it must not make the
    # random init keep fewer layers (peak RSS within half a layer, 32 MB, of
    # the run without it; 2 layers of 64 MB fewer on the old code). The file
    # is written beside the model (tmpfs would make it memory, not cache) and
    # synced (clean cache: dirty pages wait for the disk before they go).
    if [ "$(stat -f -c %T "$tmp")" = tmpfs ]; then
        echo "SKIP random init beside page cache: $tmp is a tmpfs"
    elif ! gnu_time; then
        echo "SKIP random init beside page cache: no GNU time (/usr/bin/time -f %M)"
    else
        peak() { # $1: MB of file to write in the cgroup first
            sh -c "echo \$\$ >$cg/cgroup.procs && dd if=/dev/zero of=$tmp/fill bs=1M count=$1 conv=fsync status=none &&
                   exec /usr/bin/time -f %M $ATTN $heads" 2>$tmp/err >$tmp/f$1.tsv
            tail -1 $tmp/err
            rm -f $tmp/fill
        }
        a=$(peak 0)
        b=$(peak 300)
        if [ "${a:-0}" -gt 0 ] && near "$a" "$b" && cmp -s $tmp/f300.tsv $tmp/ref.tsv; then
            pass "random init in the cgroup beside 300 MB of its page cache: as many layers kept (peak RSS $b KB, $a KB without it)"
        else fail "random init beside page cache" "peak RSS $b KB after 300 MB of page cache, $a KB without; $(head -c 200 $tmp/err)"; fi
    fi
fi

# cgroup v2's files (what most containers have today), where this machine
# has v1's memory controller or none: shown to attn in a mount namespace
# (root, unshare -m). /proc/self/cgroup is bound over by a file that names
# the cgroup (the bind is on the shell's own /proc/PID/cgroup, and the shell
# execs attn, so attn reads it as its own), and /sys/fs/cgroup is a tmpfs
# that holds the cgroup's memory.max, memory.current and memory.stat. The
# limit is only read, never enforced: what shows is how many of the 64 MB
# layers attn keeps, in its peak RSS (GNU time on the same process).
ns_mounts="mount --bind $tmp/self.cgroup /proc/\$\$/cgroup && mount -t tmpfs none /sys/fs/cgroup"
v2_peak() { # $1: "0::/path" line; $2: commands that write the files under /sys/fs/cgroup
    printf '%s\n' "$1" >$tmp/self.cgroup
    /usr/bin/time -f %M unshare -m sh -c "$ns_mounts &&
        (cd /sys/fs/cgroup && mkdir -p attn/child && $2) && exec $ATTN $heads" >$tmp/v2.tsv 2>$tmp/err &&
        cmp -s $tmp/v2.tsv $tmp/ref.tsv && tail -1 $tmp/err
}
echo 0::/ >$tmp/self.cgroup
avail=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
if [ "${avail:-0}" -lt 2000000 ]; then
    echo "SKIP random init under cgroup v2's files: MemAvailable ${avail:-?} KB, under the 2 GB in which every layer (512 MB) is kept without a limit"
elif [ "$(id -u)" != 0 ] || ! gnu_time || ! unshare -m sh -c "$ns_mounts" 2>/dev/null; then
    echo "SKIP random init under cgroup v2's files: needs root, GNU time, and unshare -m with mounts over /proc/PID/cgroup and /sys/fs/cgroup"
else
    lim='echo 400000000 >attn/memory.max'
    free=$(v2_peak 0::/attn 'echo max >attn/memory.max')
    own=$(v2_peak 0::/attn "$lim && echo 0 >attn/memory.current")
    cache=$(v2_peak 0::/attn "$lim && echo 300000000 >attn/memory.current && printf 'anon 0\ninactive_file 300000000\n' >attn/memory.stat")
    used=$(v2_peak 0::/attn "$lim && echo 300000000 >attn/memory.current && printf 'anon 300000000\ninactive_file 0\n' >attn/memory.stat")
    parent=$(v2_peak 0::/attn/child "$lim && echo max >attn/child/memory.max")
    if [ -n "$free" ] && [ -n "$used" ] && near "$own" "$cache" && near "$own" "$parent" &&
        [ "$own" -lt $((free - 200000)) ] && [ "$used" -lt $((own - 65536)) ]; then
        pass "random init under cgroup v2's files: memory.max 400 MB keeps layers within it (peak RSS $own KB, $free KB with max), memory.current counted ($used KB at 300 MB used) less memory.stat's inactive_file ($cache KB), a parent's limit applies ($parent KB)"
    else fail "random init under cgroup v2's files" "peak RSS KB: max $free, 400 MB $own, 300 MB used $used, 300 MB of it inactive file $cache, parent's limit $parent; the last run's stderr: $(head -c 200 $tmp/err)"; fi
fi
