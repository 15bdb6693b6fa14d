#!/usr/bin/env bash
# Build SUSE-style kernel module packages (KMPs) holding the vendor modules of
# testdata/vendor/ (built by build-vendor.sh against real Debian cloud-amd64 headers), plus a
# few hundred small noarch packages, with Debian's rpmbuild; print the directory holding them.
#
#   testdata/build-kmp.sh OLD OTHER SPARE PAE     e.g.  build-kmp.sh 56 54 55 57
#   (SPARE may be -: the apt lists have no third kernel with OLD's symvers; then weak2/ is
#   empty)
#
# OLD, OTHER and SPARE are cloud-amd64 ABIs, PAE a 686-pae ABI (i386): the tests give the
# kernels of their roles (tests/common/kernels.rs): OLD's and SPARE's symvers are identical
# to those of the kernel the tests link into (role new), OTHER's module_layout differs.
# Output: $KABI_CACHE/kmp/OLD-OTHER-SPARE-PAE/ with
#   RPMS/*.rpm      the KMPs and their companions (list below)
#   weak2/*.rpm     the KMPs only weak-modules2's tests install, with weak2/index.txt
#   many/*.rpm      300 small noarch packages kabi-many-NNN (a root with a few hundred
#                   packages: epochs on every 7th, 3 files each, one file name with a space
#                   and one with UTF-8, a provide with a version each)
#   index.txt       one line per package of RPMS/: FILE NAME EPOCH VERSION RELEASE
#   build.log
#
# Naming, as SUSE's %kernel_module_package names a KMP: NAME-kmp-FLAVOR-VERSION_kKVER-RELEASE,
# where KVER is the kernel's version without its flavour, dashes turned into underscores, and
# FLAVOR is what follows the last dash of the kernel release: SUSE's weak-modules2 takes a
# KMP's flavour as what follows the last dash of its name (add_kmp: ${kmpshort##*-}) and
# considers kernels whose release ends in -FLAVOR. A KMP for Debian's 6.1.0-OLD-cloud-amd64 is
# therefore kabi-vendor-kmp-amd64-1.0_k6.1.0_OLD-1 (flavour amd64; Debian's amd64, cloud-amd64
# and rt-amd64 kernels all end in -amd64).
#
# The packages (x86_64 unless noted; ABI NN = the vendor modules built for 6.1.0-NN-cloud-amd64):
#   kabi-vendor-kmp-amd64-1.0_k6.1.0_OLD-1   ABI OLD, /usr/lib/modules/KREL/updates/kabi-vendor/
#   kabi-vendor-kmp-amd64-1.0_k6.1.0_OLD-2   the same modules, a newer release
#   kabi-vendor-kmp-amd64-1.1_k6.1.0_OTHER-1 ABI OTHER (a newer version, incompatible with OLD)
#   kabi-vendor-kmp-amd64-0.9_k6.1.0_OTHER-1 ABI OTHER with SLE 15's older /lib/modules/KREL/updates/
#   kabi-other-kmp-amd64-1.0_k6.1.0_OLD-1    another KMP whose updates/kabi-other/kabi_vendor_a.ko
#                                           overlaps kabi-vendor's basename
#   kabi-vendor-kmp-pae-1.0_k6.1.0_PAE-1     i686, the vendor modules built for Debian's i386
#                                           6.1.0-PAE-686-pae (flavour pae): a KMP of another
#                                           flavour, to be ignored by amd64 kernels
#   kabi-inkernel-kmp-amd64-6.1.0_OLD-1      provides kmp_in_kernel, module under KREL/kernel/
#                                           (as SUSE's KMPs built from the kernel spec)
#   kabi-multi-kmp-amd64-1.0-1              modules for two kernels (weak-modules2 refuses it)
#   kabi-empty-kmp-amd64-1.0-1              no module at all (weak-modules2 warns and skips it)
#   kabi-vendor-doc-1.0-1 (noarch)          an ordinary package, Epoch 2
# and, in weak2/ (its own index.txt), kept out of RPMS/ so that the database fixtures made
# from RPMS/ stay as they are:
#   kabi-vendor-kmp-amd64-1.2_k6.1.0_SPARE-1 ABI SPARE (symvers identical to OLD's): a newer
#                                           version compatible with OLD and its twins, for a
#                                           kernel not installed, for weak-modules2's
#                                           replacement and fallback tests
# Each KMP carries what a real SUSE KMP carries, written by hand in the spec (SUSE's
# find-provides/find-requires generate them; Debian's rpmbuild has no such generator, so
# AutoReqProv is off): Provides NAME-kmp = VERSION (SUSE's %kernel_module_package),
# multiversion(kernel), kmod(MODULE.ko) per module, ksym(FLAVOR:SYMBOL) = CRC per exported
# symbol (from the build's Module.symvers); Requires ksym(FLAVOR:SYMBOL) = CRC per imported
# symbol not provided by the package itself (from `modprobe --dump-modversions`), and
# Requires(post) suse-module-tools; %post/%postun call weak-modules2 as SUSE's KMPs do (the
# tests install with --noscripts).
#
# Build: rpmbuild -bb with __os_install_post and debug_package set to %{nil} (modules are not
# stripped), build-id links off. Cached: rebuilt when this script or a vendor build is newer
# than the cached result; concurrent callers are serialised with flock. Install into a test
# root with `rpm --root ROOT --dbpath /var/lib/rpm -i --nodeps --noscripts RPM...` (Debian's
# rpm 4.18 writes the SQLite backend; its default dbpath is ~/.rpmdb, so always name it).
# Needs: rpmbuild (Debian's rpm), kmod's modprobe, build-vendor.sh's tools, flock.
set -euo pipefail
cache=${KABI_CACHE:-$HOME/.cache/kabi}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "build-kmp.sh: $*" >&2; exit 1; }
[ $# -eq 4 ] || die "usage: build-kmp.sh OLD OTHER SPARE PAE (ABIs, e.g. 56 54 55 57)"
old=$1 other=$2 spare=$3 pae=$4
for a in "$old" "$other" "$pae"; do
    [[ $a =~ ^[0-9]+$ ]] || die "ABI must be a number like 57, not '$a'"
done
[[ $spare =~ ^[0-9]+$ ]] || [ "$spare" = - ] || die "SPARE must be an ABI or -, not '$spare'"
out="$cache/kmp/$old-$other-$spare-$pae"

command -v rpmbuild >/dev/null || die "rpmbuild is missing (apt-get install rpm; scripts/deps.sh)"
command -v flock >/dev/null || die "flock is missing (util-linux)"
modprobe=$(command -v modprobe || true)
[ -n "$modprobe" ] || [ ! -x /sbin/modprobe ] || modprobe=/sbin/modprobe
[ -n "$modprobe" ] || die "kmod's modprobe is missing (run scripts/deps.sh)"

# the vendor builds first (each takes its own lock)
v_old=$("$here/build-vendor.sh" "$old") || die "build-vendor.sh $old failed"
v_other=$("$here/build-vendor.sh" "$other") || die "build-vendor.sh $other failed"
vpae=$(ARCH=i386 "$here/build-vendor.sh" "$pae" 686-pae) || die "ARCH=i386 build-vendor.sh $pae 686-pae failed"
v_spare=$out/weak2 # no SPARE: no 1.2 KMP (its .complete below is then never newer)
if [ "$spare" != - ]; then
    v_spare=$("$here/build-vendor.sh" "$spare") || die "build-vendor.sh $spare failed"
fi

mkdir -p "$cache/kmp"
exec 9>"$cache/.lock-kmp"
flock -w 1800 9 || die "timed out waiting for another build-kmp.sh"

if [ -f "$out/.complete" ] && [ -f "$out/weak2/index.txt" ] && [ -z "$(find "${BASH_SOURCE[0]}" "$v_old/.complete" "$v_other/.complete" "$vpae/.complete" $([ "$spare" = - ] || echo "$v_spare/.complete") -newer "$out/.complete" -print -quit)" ]; then
    echo "$out"
    exit 0
fi

tmp=$(mktemp -d "$cache/kmp/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/top/SPECS" "$tmp/top/SOURCES" "$tmp/out/RPMS" "$tmp/out/many"
log="$tmp/out/build.log"

# ksym provides/requires of a set of modules for FLAVOR, as spec lines
ksym_lines() { # FLAVOR SYMVERS MODULE...
    local flavour=$1 symvers=$2
    shift 2
    local provided
    provided=$(awk -F'\t' '{print $2}' "$symvers" | sort -u)
    awk -F'\t' -v f="$flavour" '{printf "Provides: ksym(%s:%s) = %s\n", f, $2, substr($1, 3)}' "$symvers"
    for m in "$@"; do "$modprobe" --dump-modversions "$m"; done \
        | awk '{print $2, $1}' | sort -u \
        | while read -r sym crc; do
            grep -qxF "$sym" <<<"$provided" && continue
            printf 'Requires: ksym(%s:%s) = %s\n' "$flavour" "$sym" "${crc#0x}"
        done
}

# make_kmp NAME VERSION RELEASE FLAVOR MODDIR SYMVERS|- EXTRA_SPEC_LINES FILESPEC...
# FILESPEC: SOURCE_KO=DEST_PATH (DEST_PATH absolute, as installed)
make_kmp() {
    local name=$1 version=$2 release=$3 flavour=$4 symvers=$5 extra=$6
    shift 6
    local spec="$tmp/top/SPECS/$name-$version-$release.spec" f src dst mods=() base
    base=${name%-kmp-*}
    {
        echo "Name: $name"
        echo "Version: $version"
        echo "Release: $release"
        echo "Summary: kabi test KMP $name"
        echo "License: GPL-2.0-only"
        # another architecture is a --target of rpmbuild (BuildArch would be refused)
        [ -n "${kmp_arch:-}" ] || echo "BuildArch: x86_64"
        echo "AutoReqProv: no"
        echo "Provides: $base-kmp = $version"
        echo "Provides: multiversion(kernel)"
        echo "Requires(post): suse-module-tools >= 12.4"
        echo "Requires(postun): suse-module-tools >= 12.4"
        for f in "$@"; do
            src=${f%%=*} dst=${f#*=}
            case $dst in *.ko) mods+=("$src"); echo "Provides: kmod(${dst##*/})" ;; esac
        done
        if [ "$symvers" != - ] && [ ${#mods[@]} -gt 0 ]; then
            ksym_lines "$flavour" "$symvers" "${mods[@]}"
        fi
        printf '%s\n' "$extra"
        echo "%description"
        echo "A SUSE-style kernel module package built by kabi's testdata/build-kmp.sh."
        echo "%install"
        for f in "$@"; do
            src=${f%%=*} dst=${f#*=}
            echo "install -D -m 0644 '$src' '%{buildroot}$dst'"
        done
        echo "%post"
        echo "/usr/lib/module-init-tools/weak-modules2 --add-kmp %{name}-%{version}-%{release}"
        echo "%postun"
        echo "rpm -ql %{name}-%{version}-%{release} | /usr/lib/module-init-tools/weak-modules2 --remove-kmp %{name}-%{version}-%{release}"
        echo "%files"
        for f in "$@"; do
            echo "${f#*=}"
        done
    } >"$spec"
    build_spec "$spec" ${kmp_arch:+--target "$kmp_arch"}
}

build_spec() { # SPEC [RPMBUILD OPTION...]
    rpmbuild -bb --define "_topdir $tmp/top" "${@:2}" \
        --define "__os_install_post %{nil}" --define "debug_package %{nil}" \
        --define "_build_id_links none" --define "_source_payload w6.gzdio" \
        --define "_binary_payload w6.gzdio" "$1" >>"$log" 2>&1 \
        || { tail -n 30 "$log" >&2; die "rpmbuild $1 failed (log above)"; }
}

k_old=6.1.0-$old-cloud-amd64 k_other=6.1.0-$other-cloud-amd64
ab() { # DIR KREL PREFIX SUBDIR: both vendor modules as FILESPECs
    echo "$1/kabi_vendor_a.ko=$3/lib/modules/$2/$4/kabi_vendor_a.ko"
    echo "$1/kabi_vendor_b.ko=$3/lib/modules/$2/$4/kabi_vendor_b.ko"
}
mapfile -t f_old < <(ab "$v_old" $k_old /usr updates/kabi-vendor)
mapfile -t f_other < <(ab "$v_other" $k_other /usr updates/kabi-vendor)
mapfile -t f_other_sle < <(ab "$v_other" $k_other "" updates/kabi-vendor)

make_kmp kabi-vendor-kmp-amd64 "1.0_k6.1.0_$old" 1 amd64 "$v_old/Module.symvers" "" "${f_old[@]}"
make_kmp kabi-vendor-kmp-amd64 "1.0_k6.1.0_$old" 2 amd64 "$v_old/Module.symvers" "" "${f_old[@]}"
make_kmp kabi-vendor-kmp-amd64 "1.1_k6.1.0_$other" 1 amd64 "$v_other/Module.symvers" "" "${f_other[@]}"
make_kmp kabi-vendor-kmp-amd64 "0.9_k6.1.0_$other" 1 amd64 "$v_other/Module.symvers" "" "${f_other_sle[@]}"
make_kmp kabi-other-kmp-amd64 "1.0_k6.1.0_$old" 1 amd64 "$v_old/Module.symvers" "" \
    "$v_old/kabi_vendor_a.ko=/usr/lib/modules/$k_old/updates/kabi-other/kabi_vendor_a.ko"
mapfile -t fpae < <(ab "$vpae" "6.1.0-$pae-686-pae" /usr updates/kabi-vendor)
kmp_arch=i686 make_kmp kabi-vendor-kmp-pae "1.0_k6.1.0_$pae" 1 pae "$vpae/Module.symvers" "" "${fpae[@]}"
make_kmp kabi-inkernel-kmp-amd64 "6.1.0_$old" 1 amd64 "$v_old/Module.symvers" "Provides: kmp_in_kernel" \
    "$v_old/kabi_vendor_a.ko=/usr/lib/modules/$k_old/kernel/drivers/misc/kabi_inkernel_a.ko"
make_kmp kabi-multi-kmp-amd64 1.0 1 amd64 - "" \
    "$v_old/kabi_vendor_a.ko=/usr/lib/modules/$k_old/updates/kabi-multi/kabi_vendor_a.ko" \
    "$v_other/kabi_vendor_b.ko=/usr/lib/modules/$k_other/updates/kabi-multi/kabi_vendor_b.ko"
echo "kabi test" >"$tmp/top/SOURCES/README"
make_kmp kabi-empty-kmp-amd64 1.0 1 amd64 - "" \
    "$tmp/top/SOURCES/README=/usr/share/doc/packages/kabi-empty-kmp-amd64/README"

cat >"$tmp/top/SPECS/kabi-vendor-doc.spec" <<EOF
Name: kabi-vendor-doc
Epoch: 2
Version: 1.0
Release: 1
Summary: an ordinary package beside the KMPs
License: MIT
BuildArch: noarch
AutoReqProv: no
Provides: kabi-vendor-docs = 2:1.0
Requires: kabi-vendor-kmp >= 1.0
%description
An ordinary package.
%install
install -D -m 0644 $tmp/top/SOURCES/README %{buildroot}/usr/share/doc/packages/kabi-vendor/README
%files
/usr/share/doc/packages/kabi-vendor
EOF
build_spec "$tmp/top/SPECS/kabi-vendor-doc.spec"
find "$tmp/top/RPMS" -name '*.rpm' -exec mv -t "$tmp/out/RPMS" {} +

# 300 small noarch packages from one spec with 300 subpackages (one rpmbuild run)
spec="$tmp/top/SPECS/kabi-many.spec"
{
    echo "Name: kabi-many"
    echo "Version: 1.0"
    echo "Release: 1"
    echo "Summary: many small packages"
    echo "License: MIT"
    echo "BuildArch: noarch"
    echo "AutoReqProv: no"
    echo "%description"
    echo "The main package of kabi-many."
    for n in $(seq -w 1 300); do
        i=$((10#$n))
        echo "%package -n kabi-many-$n"
        echo "Summary: small package $n"
        [ $((i % 7)) -eq 0 ] && echo "Epoch: $((i % 5 + 1))"
        echo "Version: $((i % 4)).$i~rc$((i % 3))"
        echo "Release: $((i % 9 + 1)).el$((i % 2 + 8))"
        echo "Provides: kabi-many-cap($i) = $i"
        echo "Requires: kabi-many-$(printf '%03d' $((i % 300 + 1)))"
        echo "%description -n kabi-many-$n"
        echo "Package $n."
    done
    echo "%install"
    echo "for n in \$(seq -w 1 300); do d=%{buildroot}/usr/share/kabi-many/\$n; mkdir -p \$d/sub; echo \$n >\$d/a; echo \$n >\$d/sub/b; done"
    echo "echo x >'%{buildroot}/usr/share/kabi-many/001/with space'"
    echo "echo x >'%{buildroot}/usr/share/kabi-many/002/grüße'"
    for n in $(seq -w 1 300); do
        echo "%files -n kabi-many-$n"
        echo "/usr/share/kabi-many/$n"
    done
} >"$spec"
build_spec "$spec"
find "$tmp/top/RPMS" -name 'kabi-many-[0-9]*.rpm' -exec mv -t "$tmp/out/many" {} +
[ "$(find "$tmp/out/many" -name '*.rpm' | wc -l)" -eq 300 ] || die "expected 300 kabi-many packages"

# weak-modules2's: a newer version built for ABI SPARE, apart from RPMS/
mkdir -p "$tmp/out/weak2"
if [ "$spare" != - ]; then
    mapfile -t f_spare < <(ab "$v_spare" "6.1.0-$spare-cloud-amd64" /usr updates/kabi-vendor)
    make_kmp kabi-vendor-kmp-amd64 "1.2_k6.1.0_$spare" 1 amd64 "$v_spare/Module.symvers" "" "${f_spare[@]}"
    find "$tmp/top/RPMS" -name '*.rpm' -exec mv -t "$tmp/out/weak2" {} +
fi

index() { # DIR: one line per rpm of DIR
    for f in "$1"/*.rpm; do
        [ -e "$f" ] || continue
        printf '%s %s\n' "${f##*/}" "$(rpm -qp --nosignature --qf '%{name} %{epoch} %{version} %{release}' "$f")"
    done >"$1/index.txt"
}
index "$tmp/out/RPMS"
mv "$tmp/out/RPMS/index.txt" "$tmp/out/index.txt"
index "$tmp/out/weak2"
touch "$tmp/out/.complete"
rm -rf "$out"
mv "$tmp/out" "$out"
echo "$out"
