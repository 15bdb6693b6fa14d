#!/usr/bin/env bash
# Seed fuzz/corpus/<target>/ with small real Debian modules and things made from them.
# Corpora are not committed; this recreates the seeds (existing corpus entries are kept).
#
#   fuzz/seed.sh
#
# Modules come from testdata/fetch-kernel.sh cloud-amd64 (cached under ~/.cache/kabi).
# Needs xz, zstd, gzip and objcopy; openssl (optional) adds PKCS#7-signed variants.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/corpus
root=$("$here/../testdata/fetch-kernel.sh" cloud-amd64)
kdir=$(echo "$root"/lib/modules/*/kernel)
[ -d "$kdir" ] || { echo "seed.sh: no kernel/ under $root/lib/modules" >&2; exit 1; }

# Ten small modules (< 40 KB): with and without exports, parameters, aliases.
want="lib/crc-itu-t.ko lib/crc7.ko lib/libcrc32c.ko fs/nls/nls_utf8.ko crypto/crc32_generic.ko
      net/802/stp.ko net/llc/llc.ko drivers/net/dummy.ko net/netfilter/xt_nat.ko
      drivers/input/ff-memless.ko"
mods=()
for rel in $want; do
    [ -f "$kdir/$rel" ] && mods+=("$kdir/$rel")
done
if [ ${#mods[@]} -lt 10 ]; then # another ABI may lack some: fill up with other small ones
    while IFS= read -r f; do
        mods+=("$f")
    done < <(find "$kdir" -name '*.ko' -size -40k | sort | head -n $((10 - ${#mods[@]})))
fi

targets="module_file module_image signature decompress_xz decompress_zstd decompress_gzip fnmatch modinfo kernel_text vmlinux index depmod_config depmod_scan scan_cache initramfs modprobe_config rpm_header rpm_ndb certificates efi_lists proc_keys stablelist module_sig sysconfig running_abi builtin_certs_cache sig_memo"
for t in $targets; do mkdir -p "$corpus/$t"; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0
for f in "${mods[@]}"; do
    b=$(basename "$f" .ko)
    cp "$f" "$corpus/module_file/$b.ko"
    cp "$f" "$corpus/module_image/$b.ko"
    cp "$f" "$corpus/depmod_scan/$b.ko"
    # compressed as the kernel's modules_install does it
    xz --check=crc32 --lzma2=dict=1MiB -c "$f" >"$corpus/decompress_xz/$b.ko.xz"
    zstd -q -c "$f" >"$corpus/decompress_zstd/$b.ko.zst"
    gzip -9 -n -c "$f" >"$corpus/decompress_gzip/$b.ko.gz"
    case $((n % 3)) in
        0) cp "$corpus/decompress_xz/$b.ko.xz" "$corpus/module_file/" ;;
        1) cp "$corpus/decompress_zstd/$b.ko.zst" "$corpus/module_file/" ;;
        2) cp "$corpus/decompress_gzip/$b.ko.gz" "$corpus/module_file/" ;;
    esac
    [ $n -lt 3 ] && tail -c 600 "$f" >"$corpus/signature/$b.tail"
    if objcopy -O binary --only-section=.modinfo "$f" "$tmp/modinfo" 2>/dev/null; then
        cp "$tmp/modinfo" "$corpus/modinfo/$b.modinfo"
        # fnmatch: every alias against a device string it matches ('*' -> "0")
        i=0
        tr '\0' '\n' <"$tmp/modinfo" | sed -n 's/^alias=//p' | head -n 3 | while IFS= read -r a; do
            { printf '%s\0' "$a"; printf '%s' "${a//\*/0}"; } >"$corpus/fnmatch/$b.$i"
            i=$((i + 1))
        done
    fi
    n=$((n + 1))
done

# Hand-written fnmatch seeds: classes, negation, ranges, escapes, unterminated brackets.
i=0
for s in 'pci:v00008086d*sv*sd*bc*sc*i*|pci:v00008086d00001234sv0sd0bc02sc00i00' \
         'x[!0-9]y|xay' 'x[]a-c]y|x]y' 'a\*b|a*b' 'fs-[ab|fs-[ab' '*[^-]?\[|ab[' \
         'usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*|usb:v1p2d3dc0dsc0dp0ic08isc06ip50in00'; do
    printf '%s' "$s" | tr '|' '\0' >"$corpus/fnmatch/hand.$i"
    i=$((i + 1))
done

# /etc/sysconfig/kernel as SUSE writes it, and the shell's quoting corners
printf '## Path: System/Kernel\n## Type: string\n#\nINITRD_MODULES="ahci mlx5_core"\nMODULES_LOADED_ON_BOOT=""\nNO_KMS_IN_INITRD="no"\n' \
    >"$corpus/sysconfig/suse"
printf '%s\n' "export INITRD_MODULES='a b'" 'INITRD_MODULES="x\"y \\$z" # c' 'A=ab'"'"'c d'"'"'"e
f"g' 'A="open' >"$corpus/sysconfig/quoting"

# PKCS#7-signed modules, as scripts/sign-file makes them (CMS, no attributes, no certs).
if command -v openssl >/dev/null; then
    openssl req -new -x509 -newkey rsa:2048 -nodes -days 2 -subj "/O=kabi/CN=kabi fuzz key" \
        -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1
    be32() { printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"; }
    for spec in "${mods[0]}:sha256:" "${mods[1]}:sha512:" "${mods[2]}:sha256:-keyid"; do
        IFS=: read -r f md keyid <<<"$spec"
        b=$(basename "$f" .ko).signed-$md${keyid:+-keyid}
        openssl cms -sign -binary -noattr -nocerts -nosmimecap $keyid -md "$md" \
            -signer "$tmp/cert.pem" -inkey "$tmp/key.pem" -in "$f" -outform DER -out "$tmp/sig.der"
        len=$(stat -c %s "$tmp/sig.der")
        {
            cat "$f" "$tmp/sig.der"
            printf '\0\0\2\0\0\0\0\0'
            be32 "$len"
            printf '~Module signature appended~\n'
        } >"$tmp/signed.ko"
        cp "$tmp/signed.ko" "$corpus/module_file/$b.ko"
        cp "$tmp/signed.ko" "$corpus/module_image/$b.ko"
        cp "$tmp/signed.ko" "$corpus/module_sig/$b.ko"
        tail -c 600 "$tmp/signed.ko" >"$corpus/signature/$b.tail"
        cp "$tmp/sig.der" "$corpus/signature/$b.p7s"
    done
fi

# signatures: certificates (PEM, DER, a DER list), modules signed by the test keys the
# module_sig target trusts, UEFI signature lists, /proc/keys and friends, a stablelist
sigdata=$here/../testdata/sig
for k in rsa2048 p256 p384; do
    cp "$sigdata/$k.pem" "$corpus/certificates/$k.pem"
    if command -v openssl >/dev/null; then
        openssl x509 -in "$sigdata/$k.pem" -outform DER -out "$corpus/certificates/$k.der"
    fi
done
cat "$corpus"/certificates/*.der >"$corpus/certificates/list.der" 2>/dev/null || true
for k in rsa2048 p256; do
    (cd "$here/.." && cargo run -q --release --bin kabi -- sign --key "$sigdata/$k.key" \
        --cert "$sigdata/$k.pem" -o "$corpus/module_sig/$(basename "${mods[0]}" .ko).$k.ko" \
        "${mods[0]}") >/dev/null || echo "seed.sh: no kabi-signed seed" >&2
done
cp "${mods[3]}" "$corpus/module_sig/unsigned.ko"
if command -v cert-to-efi-sig-list >/dev/null; then
    cert-to-efi-sig-list "$sigdata/rsa2048.pem" "$corpus/efi_lists/db.esl"
    cert-to-efi-sig-list "$sigdata/p256.pem" "$tmp/p256.esl"
    cat "$corpus/efi_lists/db.esl" "$tmp/p256.esl" >"$corpus/efi_lists/two.esl"
    printf '\7\0\0\0' | cat - "$tmp/p256.esl" >"$corpus/efi_lists/efivar-db"
fi
printf '\6\0\0\0\1' >"$corpus/efi_lists/SecureBoot"
cat >"$corpus/proc_keys/keys" <<'KEYS'
0a3e6f52 I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 1
1b2c3d4e I------     1 perm 1f010000     0     0 asymmetri Build time autogenerated kernel key: 8d02af3b9f75dd230deaf4e6abfbf08bd6558ab1: X509.rsa d6558ab1 []
22222222 I------     2 perm 1f0f0000     0     0 keyring   .secondary_trusted_keys: 1
33333333 I------     1 perm 1f030000     0     0 keyring   .platform: empty
3a3a3a3a I--Q---     1 perm 1f010000     0     0 blacklist bin:0011223344556677889900112233445566778899001122334455667788990011
KEYS
printf 'none [integrity] confidentiality\n' >"$corpus/proc_keys/lockdown"
printf 'BOOT_IMAGE=/vmlinuz ro module.sig_enforce=1 lockdown=confidentiality -- x\n' >"$corpus/proc_keys/cmdline"
printf 'CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\nCONFIG_CRYPTO_SHA256=m\nCONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y\n' >"$corpus/proc_keys/config"
printf '[rhel9_x86_64_stablelist]\n\t__alloc_pages\n\tkmalloc_caches\n# c\n\n[x]\n\tprintk\n' >"$corpus/stablelist/list"

# kernel ABI text and images: real symvers lines, a kallsyms excerpt, a bzImage's head
kroot=$("$here/../testdata/fetch-kernel.sh" cloud-amd64 2>/dev/null || true)
if [ -n "$kroot" ]; then
    kv=$(ls "$kroot/lib/modules" | head -1)
    head -n 200 "$kroot/usr/src/linux-headers-$kv/Module.symvers" >"$corpus/kernel_text/symvers" || true
    head -c 16384 "$kroot/boot/vmlinuz-$kv" >"$corpus/vmlinux/bzimage-head" || true
fi
printf 'ffffffff81000000 T _stext\nffffffff828bef00 R __start___ksymtab\nffffffff828bef0c R __stop___ksymtab\nffffffff828bef00 r __ksymtab_printk\nffffffffc0a01000 r __ksymtab_cdrom_open\t[cdrom]\n' >"$corpus/kernel_text/kallsyms"

# a real scan cache: kabi depmod over a tree of the seed modules
mkdir -p "$tmp/root/lib/modules/0.0/kernel"
cp "${mods[@]:0:4}" "$tmp/root/lib/modules/0.0/kernel/"
(cd "$here/.." && cargo run -q --release --bin kabi -- depmod -b "$tmp/root" -C /dev/null \
    --cache "$corpus/scan_cache/seed.cache" 0.0) || echo "seed.sh: no scan cache seed" >&2

# rpm header blobs: every package of a real rpm database (Debian's rpm installing the KMP
# fixtures of testdata/build-kmp.sh), dumped with the sqlite3 shell
if command -v rpm >/dev/null && command -v sqlite3 >/dev/null \
        && kmpdir=$("$here/../testdata/build-kmp.sh" 2>/dev/null) \
        && rpm --root "$tmp/rpmroot" --dbpath /var/lib/rpm -i --nodeps --noscripts --nosignature \
            --ignorearch "$kmpdir"/RPMS/*.rpm "$kmpdir"/many/kabi-many-00[1-9]-*.rpm 2>/dev/null; then
    (cd "$corpus/rpm_header" && sqlite3 "$tmp/rpmroot/var/lib/rpm/rpmdb.sqlite" \
        "SELECT writefile('blob-' || hnum, blob) FROM Packages" >/dev/null)
else
    echo "seed.sh: no rpm header seeds (needs rpm, sqlite3 and testdata/build-kmp.sh)" >&2
fi

# the committed ndb database (written by rpm's own ndb backend: testdata/make-ndb-fixture.sh)
cp "$here/../testdata/rpmdb/ndb/Packages.db" "$corpus/rpm_ndb/Packages.db"

# a running-kernel ABI snapshot as kabi load writes it, and a /proc/modules
printf 'kabi-running-abi 1\nboot_id 3839813f-f92f-49a9-81bf-71c6269d423e\nrelease 6.1.0-57-cloud-amd64\ncrcs_known 1\nvermagic 362e312e302d35372d636c6f75642d616d643634\nthis_module_size 1344\narch 64 le 62 1\nmodule nls_ascii 12288 ffffffffc0a0b000\nsymbols\n_printk\t0x92997ed8\tEXPORT_SYMBOL\tvmlinux\t\nkfree\t0x037a0cba\tEXPORT_SYMBOL\tvmlinux\t\nnls_thing\t-\tEXPORT_SYMBOL_GPL\tnls_ascii\tNLS\n' \
    >"$corpus/running_abi/snapshot"
printf 'nls_ascii 12288 0 - Live 0xffffffffc0a0b000\ndummy 16384 0 - Live 0x0000000000000000 (O)\n' \
    >"$corpus/running_abi/proc-modules"

# the certificate lines of a builtin-certs file (the target puts a valid header in front):
# the test keys' certificates, DER, back to back
if [ -s "$corpus/certificates/list.der" ]; then
    der=$(stat -c %s "$corpus/certificates/list.der")
    n=$(find "$corpus/certificates" -name '*.der' ! -name list.der | wc -l)
    { printf 'certs %d %d\n' "$n" "$der"; cat "$corpus/certificates/list.der"; } \
        >"$corpus/builtin_certs_cache/certs"
fi

# a sig-verified file with two entries
{ printf 'KABISIGV'; head -c 32 /dev/zero; printf '%032d' 1; } >"$corpus/sig_memo/two"

for t in $targets; do
    printf '%-16s %3d seeds\n' "$t" "$(find "$corpus/$t" -type f | wc -l)"
done
