#!/usr/bin/env bash
# Module signatures: what a signature check costs kabi, and kabi sign against sign-file.
#   1. the certificates of a kernel image: decoding the image (zstd: cloud-amd64; xz: amd64);
#   2. kabi check of a whole tree (1,121 cloud-amd64 modules) with every signature verified
#      (image certificates, SHA-256 over each body, one RSA-4096 verification each) against
#      --no-keys (signatures judged from the trailer alone): the difference is the cost;
#   3. signing N modules (default 100) one process per module: Debian's scripts/sign-file
#      (OpenSSL) against kabi sign, both RSA-4096 sha256, outputs compared byte for byte.
# Medians of R runs (default 5). Usage: scripts/bench-sig.sh [N [R]]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}; r=${2:-5}
command -v /usr/bin/time >/dev/null || { echo "bench-sig.sh: GNU time is missing (apt-get install time)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "bench-sig.sh: openssl is missing" >&2; exit 1; }
# the binary the packages install (static: one process per module below)
kabi=$(bash scripts/build-shipped.sh)
cloud=$(testdata/fetch-kernel.sh cloud-amd64); generic=$(testdata/fetch-kernel.sh amd64)
kc=$(ls "$cloud/lib/modules"); kg=$(ls "$generic/lib/modules")
abi=$(echo "$kc" | cut -d- -f2)
vendor=$(testdata/build-vendor.sh "$abi")
signfile=$(dirname "$(dirname "$vendor")")/headers/$kc/usr/lib/linux-kbuild-6.1/scripts/sign-file
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cputime() { # command... -> CPU seconds, user + system (median of r)
    for _ in $(seq "$r"); do
        /usr/bin/time -f '%U + %S' "$@" 2>&1 >/dev/null | tail -1 | bc -l
    done | median
}
timeit() {
    for _ in $(seq "$r"); do
        local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N)
        echo "$e - $s" | bc -l
    done | median
}

m=$cloud/lib/modules/$kc/kernel/drivers/net/dummy.ko
cat "$cloud/boot/vmlinuz-$kc" "$generic/boot/vmlinuz-$kg" >/dev/null
t_one=$(timeit "$kabi" check --no-keys --vmlinuz "$cloud/boot/vmlinuz-$kc" "$m")
t_zstd=$(timeit "$kabi" sign --verify --vmlinuz "$cloud/boot/vmlinuz-$kc" "$m")
t_xz=$(timeit "$kabi" sign --verify --vmlinuz "$generic/boot/vmlinuz-$kg" \
    "$generic/lib/modules/$kg/kernel/drivers/net/dummy.ko")
t_small=$(timeit "$kabi" sign --verify --trusted-cert testdata/sig/rsa2048.pem "$m")
printf 'certificates of an image (kabi sign --verify of one module, minus the same with --trusted-cert):\n'
printf '  zstd image %s: %.3f s   xz image %s: %.3f s\n' "$kc" "$(echo "$t_zstd - $t_small" | bc -l)" \
    "$kg" "$(echo "$t_xz - $t_small" | bc -l)"

count=$(find "$cloud/lib/modules/$kc/kernel" -name '*.ko*' | wc -l)
bytes=$(find "$cloud/lib/modules/$kc/kernel" -name '*.ko*' -printf '%s\n' | awk '{s+=$1} END {print s}')
cat $(find "$cloud/lib/modules/$kc/kernel" -name '*.ko*') >/dev/null
t_keys=$(timeit "$kabi" check --root "$cloud" -k "$kc" "$cloud/lib/modules/$kc/kernel")
t_nokeys=$(timeit "$kabi" check --no-keys --root "$cloud" -k "$kc" "$cloud/lib/modules/$kc/kernel")
c_keys=$(cputime "$kabi" check --root "$cloud" -k "$kc" "$cloud/lib/modules/$kc/kernel")
c_nokeys=$(cputime "$kabi" check --no-keys --root "$cloud" -k "$kc" "$cloud/lib/modules/$kc/kernel")
verified=$("$kabi" check -v --root "$cloud" -k "$kc" "$cloud/lib/modules/$kc/kernel" | grep -c 'signature    verified' || true)
printf 'kabi check of %d modules (%d MB), %d signatures verified: %.3f s; trailer only (--no-keys): %.3f s\n' \
    "$count" "$((bytes / 1000000))" "$verified" "$t_keys" "$t_nokeys"
printf '  CPU: %.3f s against %.3f s: %.3f ms per module (the image decoded once included)\n' \
    "$c_keys" "$c_nokeys" "$(echo "($c_keys - $c_nokeys) * 1000 / $count" | bc -l)"

openssl req -new -nodes -utf8 -sha256 -days 3650 -batch -x509 -subj "/CN=bench/O=kabi" \
    -newkey rsa:4096 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1
mkdir -p "$tmp/in" "$tmp/ref" "$tmp/kabi"
i=0
for f in $(find "$cloud/lib/modules/$kc/kernel" -name '*.ko' | sort | awk "NR % 10 == 1" | head -n "$n"); do
    # unsigned copies (sign-file would append a second signature to a signed one)
    "$kabi" sign --key "$tmp/key.pem" --cert "$tmp/cert.pem" -o "$tmp/in/$i.ko" "$f" >/dev/null
    python3 - "$tmp/in/$i.ko" <<'PY'
import sys
p = sys.argv[1]; d = open(p, 'rb').read(); n = len(d) - 40
sl = int.from_bytes(d[n + 8:n + 12], 'big'); open(p, 'wb').write(d[:n - sl])
PY
    i=$((i + 1))
done
sf() { for f in "$tmp"/in/*.ko; do "$signfile" sha256 "$tmp/key.pem" "$tmp/cert.pem" "$f" "$tmp/ref/$(basename "$f")"; done; }
ks() { for f in "$tmp"/in/*.ko; do "$kabi" sign --key "$tmp/key.pem" --cert "$tmp/cert.pem" -o "$tmp/kabi/$(basename "$f")" "$f"; done; }
ks1() { "$kabi" sign --key "$tmp/key.pem" --cert "$tmp/cert.pem" "$tmp"/kabi/*.ko; }
t_sf=$(timeit sf); t_ks=$(timeit ks)
diff -r "$tmp/ref" "$tmp/kabi" >/dev/null && same=identical || same=DIFFERENT
t_ks1=$(timeit ks1)
printf 'signing %d modules, RSA-4096 sha256, a process each: sign-file %.3f s, kabi sign %.3f s (ratio %.2f); outputs %s\n' \
    "$i" "$t_sf" "$t_ks" "$(echo "$t_sf / $t_ks" | bc -l)" "$same"
printf '  kabi sign of all %d in one process: %.3f s\n' "$i" "$t_ks1"
