#!/usr/bin/env bash
# Generate and build 20 distinct out-of-tree "vendor" modules against a real Debian kernel's
# headers (for scripts/bench-weak.sh), print the directory that holds them.
#
#   testdata/vendor-many/build.sh ABI [FLAVOUR [PAIRS]]   e.g.  build.sh 57   (cloud-amd64)
#
# Output: $KABI_CACHE/vendor-many/6.1.0-ABI-FLAVOUR/ with kabi_bench_a01.ko ... a10.ko and
# kabi_bench_b01.ko ... b10.ko (debug info stripped, like an installed module; unsigned), the
# build's Module.symvers (owners as module names), build.log and the generated sources
# (src/). Ten pairs: kabi_bench_aNN exports the GPL function kabi_bench_aNN_get and
# kabi_bench_bNN calls it, so bNN's .modinfo says `depends: kabi_bench_aNN`. PAIRS (1-999,
# default 10) other than 10 makes that many pairs, in .../6.1.0-ABI-FLAVOUR-pPAIRS/, numbered
# with three digits from 100 pairs on (kabi_bench_a001 ... a100 and b001 ... b100).
#
# Every module imports a few common kernel exports (_printk, kmalloc_trace/__kmalloc,
# kfree, msleep, mutex_lock/unlock; ktime_get in the b's). Each aNN also has, by NN mod 3:
#   0  a PCI driver for a device nobody has (__pci_register_driver, pci_unregister_driver,
#      a pci: alias) and crc_itu_t (from the kernel's own module lib/crc-itu-t.ko)
#   1  a misc device (misc_register, misc_deregister) and crc7_be (lib/crc7.ko)
#   2  a delayed work item (queue_delayed_work_on, cancel_delayed_work_sync, system_wq,
#      delayed_work_timer_fn, init_timer_key) and crc32c (lib/libcrc32c.ko)
# so the a's depend on in-tree modules too, and bNN depends on aNN and, through it, on them.
# Loading any of them is harmless (nothing binds, nothing is created that a user would see
# except an unused misc device node).
#
# The headers are the ones testdata/build-vendor.sh unpacks into $KABI_CACHE/headers/<kver>/
# (it is run first when they are missing); the build is the same make call (gcc-12, as the
# headers require), in a temporary directory renamed into place; it is redone when this script
# is newer than the cached result. Concurrent callers are serialised with flock.
# Cache: $KABI_CACHE (default ~/.cache/kabi).
set -euo pipefail
abi=${1:?usage: build.sh ABI [FLAVOUR]}
flavour=${2:-cloud-amd64}
cache=${KABI_CACHE:-$HOME/.cache/kabi}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
kver="6.1.0-$abi-$flavour"
hroot="$cache/headers/$kver"
out="$cache/vendor-many/$kver"
pairs=${3:-10}

die() { echo "vendor-many/build.sh: $*" >&2; exit 1; }

[[ $abi =~ ^[0-9]+$ ]] || die "ABI must be a number like 57, not '$abi'"
[[ $pairs =~ ^[1-9][0-9]{0,2}$ ]] || die "PAIRS must be a number from 1 to 999, not '$pairs'"
[ "$pairs" = 10 ] || out="$out-p$pairs"
width=2
[ "$pairs" -lt 100 ] || width=3
for tool in make gcc-12 strip flock; do
    command -v "$tool" >/dev/null || die "$tool is missing (run scripts/deps.sh)"
done
if [ ! -f "$hroot/.complete" ]; then
    "$here/../build-vendor.sh" "$abi" "$flavour" >/dev/null || die "build-vendor.sh $abi $flavour failed"
fi
[ -f "$hroot/.complete" ] || die "no headers in $hroot after build-vendor.sh"
mkdir -p "$cache/vendor-many"

exec 9>"$cache/vendor-many/.lock-${out##*/}"
flock 9

if [ -f "$out/.complete" ] && [ ! "$self" -nt "$out/.complete" ]; then
    echo "$out"
    exit 0
fi

tmp=$(mktemp -d "$cache/vendor-many/.build-${out##*/}.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/build" "$tmp/out"

gen_a() { # NN: kabi_bench_aNN.c
    local n=$1 i=$((10#$1)) kind=$((10#$1 % 3)) inc feat_decl feat_init feat_exit crc dev
    dev=$(printf '0x%04x' $((0xbe00 + 10#$1)))
    case $kind in
        0)
            inc='#include <linux/crc-itu-t.h>
#include <linux/pci.h>'
            crc='crc_itu_t(0, (const u8 *)state->buf, len)'
            feat_decl="static const struct pci_device_id kabi_bench_a${n}_ids[] = {
	{ PCI_DEVICE(0x1234, ${dev}) },
	{ }
};
MODULE_DEVICE_TABLE(pci, kabi_bench_a${n}_ids);

static int kabi_bench_a${n}_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	return -ENODEV;
}

static struct pci_driver kabi_bench_a${n}_driver = {
	.name = \"kabi_bench_a${n}\",
	.id_table = kabi_bench_a${n}_ids,
	.probe = kabi_bench_a${n}_probe,
};"
            feat_init="pci_register_driver(&kabi_bench_a${n}_driver)"
            feat_exit="pci_unregister_driver(&kabi_bench_a${n}_driver);"
            ;;
        1)
            inc='#include <linux/crc7.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>'
            crc='crc7_be(0, (const u8 *)state->buf, len)'
            feat_decl="static const struct file_operations kabi_bench_a${n}_fops = {
	.owner = THIS_MODULE,
};

static struct miscdevice kabi_bench_a${n}_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = \"kabi_bench_a${n}\",
	.fops = &kabi_bench_a${n}_fops,
};"
            feat_init="misc_register(&kabi_bench_a${n}_misc)"
            feat_exit="misc_deregister(&kabi_bench_a${n}_misc);"
            ;;
        2)
            inc='#include <linux/crc32c.h>
#include <linux/workqueue.h>'
            crc='crc32c(0, state->buf, len)'
            feat_decl="static void kabi_bench_a${n}_tick(struct work_struct *w)
{
	pr_info(\"kabi_bench_a${n}: tick\\n\");
}

static DECLARE_DELAYED_WORK(kabi_bench_a${n}_work, kabi_bench_a${n}_tick);"
            feat_init="(schedule_delayed_work(&kabi_bench_a${n}_work, HZ), 0)"
            feat_exit="cancel_delayed_work_sync(&kabi_bench_a${n}_work);"
            ;;
    esac
    cat <<EOF
// SPDX-License-Identifier: GPL-2.0
/* kabi_bench_a${n}: generated by testdata/vendor-many/build.sh (kabi's weak-modules bench). */
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
${inc}

static unsigned int bufsize = 32 + ${i};
module_param(bufsize, uint, 0444);
MODULE_PARM_DESC(bufsize, "size of the buffer");

struct kabi_bench_a${n}_state {
	struct mutex lock;
	unsigned int calls;
	char *buf;
};

static struct kabi_bench_a${n}_state *state;

int kabi_bench_a${n}_get(const char *who)
{
	int len;
	unsigned int sum;

	mutex_lock(&state->lock);
	state->calls++;
	len = snprintf(state->buf, bufsize, "a${n} %s", who);
	if (len >= bufsize)
		len = bufsize - 1;
	sum = ${crc};
	mutex_unlock(&state->lock);
	pr_info("kabi_bench_a${n}: %s (%u, %x)\n", state->buf, state->calls, sum);
	return state->calls;
}
EXPORT_SYMBOL_GPL(kabi_bench_a${n}_get);

${feat_decl}

static int __init kabi_bench_a${n}_init(void)
{
	int err;

	state = kzalloc(sizeof(*state), GFP_KERNEL);
	if (!state)
		return -ENOMEM;
	mutex_init(&state->lock);
	state->buf = kmalloc(bufsize ? bufsize : 1, GFP_KERNEL);
	if (!state->buf) {
		kfree(state);
		return -ENOMEM;
	}
	msleep(1);
	err = ${feat_init};
	if (err) {
		kfree(state->buf);
		kfree(state);
		return err;
	}
	return 0;
}

static void __exit kabi_bench_a${n}_exit(void)
{
	${feat_exit}
	kfree(state->buf);
	kfree(state);
}

module_init(kabi_bench_a${n}_init);
module_exit(kabi_bench_a${n}_exit);

MODULE_LICENSE("GPL");
MODULE_ALIAS("kabi-bench-a${n}");
MODULE_DESCRIPTION("kabi bench: generated vendor module a${n}");
MODULE_AUTHOR("kabi bench");
MODULE_VERSION("1.$((10#$n))");
EOF
}

gen_b() { # NN: kabi_bench_bNN.c
    local n=$1
    cat <<EOF
// SPDX-License-Identifier: GPL-2.0
/* kabi_bench_b${n}: generated by testdata/vendor-many/build.sh; uses kabi_bench_a${n}. */
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/slab.h>

int kabi_bench_a${n}_get(const char *who);

static char *note;

static int __init kabi_bench_b${n}_init(void)
{
	ktime_t t = ktime_get();
	int n = kabi_bench_a${n}_get("kabi_bench_b${n}");

	note = kasprintf(GFP_KERNEL, "b${n} #%d", n);
	usleep_range(10, 20);
	pr_info("kabi_bench_b${n}: loaded at %lld ns, %s\n", ktime_to_ns(t), note ? note : "-");
	return 0;
}

static void __exit kabi_bench_b${n}_exit(void)
{
	kfree(note);
}

module_init(kabi_bench_b${n}_init);
module_exit(kabi_bench_b${n}_exit);

MODULE_LICENSE("GPL");
MODULE_ALIAS("kabi-bench-b${n}");
MODULE_DESCRIPTION("kabi bench: generated vendor module b${n}, using a${n}");
MODULE_AUTHOR("kabi bench");
MODULE_VERSION("1.${n#0}");
EOF
}

mods=()
for ((i = 1; i <= pairs; i++)); do
    n=$(printf '%0*d' "$width" "$i")
    gen_a "$n" >"$tmp/build/kabi_bench_a$n.c"
    gen_b "$n" >"$tmp/build/kabi_bench_b$n.c"
    mods+=("kabi_bench_a$n" "kabi_bench_b$n")
done
{
    echo "# generated by testdata/vendor-many/build.sh: $pairs pairs, bNN uses aNN's export"
    printf 'obj-m += %s.o\n' "${mods[@]}"
} >"$tmp/build/Kbuild"
mkdir "$tmp/out/src"
cp "$tmp/build/Kbuild" "$tmp/build"/*.c "$tmp/out/src/"

if ! make -j"$(nproc)" -C "$hroot/usr/src/linux-headers-$kver" \
        -f "$hroot/usr/src/linux-headers-6.1.0-$abi-common/Makefile" \
        M="$tmp/build" modules >"$tmp/out/build.log" 2>&1; then
    tail -n 30 "$tmp/out/build.log" >&2
    die "building the bench modules against $kver failed (log above)"
fi
if grep -q 'WARNING: modpost' "$tmp/out/build.log"; then
    grep 'WARNING: modpost' "$tmp/out/build.log" >&2
    die "modpost warned (an unresolved symbol?): see above"
fi
for m in "${mods[@]}"; do
    [ -f "$tmp/build/$m.ko" ] || die "the build made no $m.ko (see $tmp/out/build.log)"
    strip --strip-debug -o "$tmp/out/$m.ko" "$tmp/build/$m.ko"
done
sed "s|\t$tmp/build/|\t|" "$tmp/build/Module.symvers" >"$tmp/out/Module.symvers"
touch "$tmp/out/.complete"
rm -rf "$out"
mv "$tmp/out" "$out"
echo "$out"
