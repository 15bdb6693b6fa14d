#!/usr/bin/env bash
# Make the committed ndb fixture testdata/rpmdb/ndb/: a Packages.db written by rpm's own ndb
# backend (the format of SUSE's rpm database from SLE 15 SP3 until SQLite), and what that
# rpm prints about it, for tests/rpmdb.rs.
#
#   testdata/make-ndb-fixture.sh            (RPM_NDB=/path/to/rpm to use an ndb-capable rpm)
#
# Debian's rpm 4.18 is built without ndb. Unless RPM_NDB names an rpm with ndb, this builds
# rpm 4.18.0 from Debian's source package (`apt-get source rpm` through a private deb-src
# list, nothing added to the machine's apt sources; upstream's source, Debian's patches not
# applied) with --enable-ndb into $KABI_CACHE/rpm-ndb: about 10 minutes on 2 cores, once; it
# installs liblua5.3-dev, libpopt-dev, libmagic-dev, libsqlite3-dev, libssl-dev, zlib1g-dev,
# libzstd-dev, liblzma-dev, libbz2-dev, libelf-dev, pkg-config and gettext with apt first.
# Then that rpm installs the KMP fixtures of build-kmp.sh and kabi-many-001..020 into a
# throwaway root with --define '_db_backend ndb' --dbpath /var/lib/rpm, erases three of them
# and installs kabi-many-021..023, and the files below are written (Index.db, rpm's derived indexes, is not kept):
#   Packages.db     the database
#   packages.txt    rpm -qa --qf '%{dbinstance}\t%{name}\t%{epoch}\t%{version}\t%{release}\t%{arch}\n'
#   files.txt       rpm -qa --qf '[%{=dbinstance}\t%{filenames}\n]'
#   provides.txt    rpm -qa --qf '[%{=dbinstance}\t%{providename}\t%{provideflags}\t%{provideversion}\n]'
#   requires.txt    rpm -qa --qf '[%{=dbinstance}\t%{requirename}\t%{requireflags}\t%{requireversion}\n]'
#   order.txt       rpm -qa --qf '%{dbinstance}\n' (rpm's listing order)
# The tests compare kabi's reading of Packages.db with these; they never write an ndb file.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KABI_CACHE:-$HOME/.cache/kabi}
out="$here/rpmdb/ndb"
die() { echo "make-ndb-fixture.sh: $*" >&2; exit 1; }

rpm=${RPM_NDB:-}
if [ -z "$rpm" ]; then
    prefix="$cache/rpm-ndb"
    rpm="$prefix/bin/rpm"
    if [ ! -x "$rpm" ]; then
        apt-get install -y -qq liblua5.3-dev libpopt-dev libmagic-dev libsqlite3-dev libssl-dev \
            zlib1g-dev libzstd-dev liblzma-dev libbz2-dev libelf-dev pkg-config gettext >/dev/null
        src=$(mktemp -d)
        trap 'rm -rf "$src"' EXIT
        mkdir -p "$src/lists/partial"
        echo "deb-src http://deb.debian.org/debian bookworm main" >"$src/sources.list"
        apt_opts=(-o "Dir::Etc::SourceList=$src/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
                  -o "Dir::State::Lists=$src/lists")
        apt-get "${apt_opts[@]}" update -qq
        (cd "$src" && apt-get "${apt_opts[@]}" source --download-only rpm >/dev/null)
        tar -C "$src" -xf "$src"/rpm_*.orig.tar.*
        (cd "$src"/rpm-4.* \
            && LUA_CFLAGS="$(pkg-config --cflags lua5.3)" LUA_LIBS="$(pkg-config --libs lua5.3)" \
               ./configure --prefix="$prefix" --enable-ndb --enable-sqlite --disable-python \
                   --disable-plugins --without-archive --with-crypto=openssl --disable-openmp \
                   --without-selinux --without-cap --without-acl --without-audit --disable-nls \
                   >"$src/configure.log" 2>&1 \
            && make -j"$(nproc)" >"$src/make.log" 2>&1 && make install >>"$src/make.log" 2>&1) \
            || die "building rpm with ndb failed (logs in $src)"
    fi
fi
"$rpm" --version | grep -q '^RPM version 4\.' || die "$rpm is not rpm"

eval "$("$here/kernel-roles.sh" cloud-amd64)" # the KMPs' kernels by role
pae=$(ARCH=i386 "$here/fetch-kernel.sh" --abis 686-pae | tail -n 1)
kmpdir=$("$here/build-kmp.sh" "$old" "$other" "${spare:--}" "$pae")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
q() { "$rpm" --root "$root" --dbpath /var/lib/rpm --define '_db_backend ndb' "$@"; }
q -i --nodeps --noscripts --nosignature --ignorearch "$kmpdir"/RPMS/*.rpm \
    $(ls "$kmpdir"/many/*.rpm | head -n 20)
[ -f "$root/var/lib/rpm/Packages.db" ] || die "$rpm wrote no Packages.db (no ndb backend?)"
# erase three packages and install three more: free slots, and blobs placed in the holes, so
# that rpm's listing order (by blob offset) is not the order of the package numbers
q -e --nodeps --noscripts kabi-many-005 kabi-many-010 kabi-vendor-doc
q -i --nodeps --noscripts --nosignature $(ls "$kmpdir"/many/*.rpm | sed -n '21,23p')
mkdir -p "$out"
cp "$root/var/lib/rpm/Packages.db" "$out/Packages.db"
qa() { q -qa --nosignature --nodigest --qf "$1"; }
qa '%{dbinstance}\t%{name}\t%{epoch}\t%{version}\t%{release}\t%{arch}\n' >"$out/packages.txt"
qa '[%{=dbinstance}\t%{filenames}\n]' >"$out/files.txt"
qa '[%{=dbinstance}\t%{providename}\t%{provideflags}\t%{provideversion}\n]' >"$out/provides.txt"
qa '[%{=dbinstance}\t%{requirename}\t%{requireflags}\t%{requireversion}\n]' >"$out/requires.txt"
qa '%{dbinstance}\n' >"$out/order.txt"
"$rpm" --version >"$out/rpm-version.txt"
wc -l "$out"/*.txt
