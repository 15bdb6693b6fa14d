#!/usr/bin/env bash
# Build kabi's packages: .deb (kabi, kabi-kmod-names) staged with dpkg-deb, .rpm (kabi,
# kabi-kmod-names) built with rpmbuild from dist/rpm/kabi.spec. Both hold the static binary
# (glibc, +crt-static, LTO, one codegen unit, stripped: the release profile) and what
# scripts/install.sh installs, in each distribution's paths.
#
#   scripts/package.sh [--out DIR] [--bin PATH] [deb|rpm|all]   (default: all, target/package/out)
#
# Without --bin the static binary is built by scripts/build-shipped.sh (target/package as its
# own target directory; the usual target/ is left alone). Prints the packages' paths.
# Needs: cargo with the x86_64-unknown-linux-gnu target, dpkg-deb, fakeroot is not needed
# (--root-owner-group), rpmbuild (Debian's rpm package).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=target/package/out bin="" what=all
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift ;;
        --bin) bin=$2; shift ;;
        deb|rpm|all) what=$1 ;;
        *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
die() { echo "package.sh: $*" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || die "no version in Cargo.toml"
# the release date of this version, from CHANGELOG.md ("## 0.1.0 - 2026-12-01")
date=$(sed -n "s/^## $version - \([0-9-]*\)$/\1/p" CHANGELOG.md)
[ -n "$date" ] || die "CHANGELOG.md has no '## $version - DATE' heading"
maintainer="kabi developers <kabi@lists.kabi-project.org>"
summary="kernel-module ABI checks, depmod and weak-updates for out-of-tree drivers"

# without --bin: built as shipped (static PIE, hot functions first; scripts/build-shipped.sh)
[ -n "$bin" ] || bin=$(bash "$repo/scripts/build-shipped.sh") || die "scripts/build-shipped.sh failed"
[ -x "$bin" ] || die "$bin is not an executable"
command -v readelf >/dev/null || die "readelf is missing (apt-get install binutils)"
if readelf -lW "$bin" | grep -q 'Requesting program interpreter'; then
    die "$bin is dynamically linked: the packages ship the static binary"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# ---------------------------------------------------------------------------------------
build_deb() {
    local arch=amd64 debver="$version-1" d
    local rfc
    rfc=$(LC_ALL=C date -u -d "$date 12:00" '+%a, %d %b %Y %H:%M:%S +0000')
    for pkg in kabi kabi-kmod-names; do
        d="$stage/deb/$pkg"
        mkdir -p "$d/DEBIAN"
        if [ $pkg = kabi ]; then
            bash scripts/install.sh --destdir "$d" --layout debian --bin "$bin" >/dev/null
            # Debian: licences in the copyright file, upstream changelog as changelog.gz
            rm "$d/usr/share/doc/kabi/LICENSE-MIT" "$d/usr/share/doc/kabi/LICENSE-APACHE"
            gzip -9n <CHANGELOG.md >"$d/usr/share/doc/kabi/changelog.gz"
            rm "$d/usr/share/doc/kabi/CHANGELOG.md"
            gzip -9n "$d"/usr/share/man/man8/*.8
        else
            bash scripts/install.sh --destdir "$d" --layout debian --no-kabi --kmod-names >/dev/null
            mkdir -p "$d/usr/share/doc/$pkg"
        fi
        printf '%s (%s) unstable; urgency=medium\n\n  * Release %s (see /usr/share/doc/kabi/changelog.gz).\n\n -- %s  %s\n' \
            "$pkg" "$debver" "$version" "$maintainer" "$rfc" | gzip -9n >"$d/usr/share/doc/$pkg/changelog.Debian.gz"
        copyright "$d/usr/share/doc/$pkg/copyright"
        if [ -f "dist/debian/$pkg.lintian-overrides" ]; then
            install -Dm644 "dist/debian/$pkg.lintian-overrides" "$d/usr/share/lintian/overrides/$pkg"
        fi
        for s in postinst prerm postrm; do
            if [ -f "dist/debian/$pkg.$s" ]; then
                install -m755 "dist/debian/$pkg.$s" "$d/DEBIAN/$s"
            fi
        done
        # every file in /etc (kabi-kmod-names has none: no etc/ at all)
        (cd "$d" && if [ -d etc ]; then find etc -type f; fi | sed 's|^|/|' | sort) >"$d/DEBIAN/conffiles"
        [ -s "$d/DEBIAN/conffiles" ] || rm "$d/DEBIAN/conffiles"
        (cd "$d" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
            | xargs -0 -r md5sum) >"$d/DEBIAN/md5sums"
        [ -s "$d/DEBIAN/md5sums" ] || rm "$d/DEBIAN/md5sums"
        local size
        size=$(du -sk --exclude=DEBIAN "$d" | cut -f1)
        if [ $pkg = kabi ]; then
            control_kabi "$arch" "$debver" "$size" >"$d/DEBIAN/control"
        else
            control_names "$debver" "$size" >"$d/DEBIAN/control"
        fi
        find "$d" -type d -exec chmod 755 {} +
        local deb_arch=$arch
        [ $pkg = kabi-kmod-names ] && deb_arch=all
        dpkg-deb --root-owner-group -Zxz --build "$d" "$out/${pkg}_${debver}_${deb_arch}.deb" >/dev/null
        echo "$out/${pkg}_${debver}_${deb_arch}.deb"
    done
}

copyright() {
    cat >"$1" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: kabi
Upstream-Contact: $maintainer

Files: *
Copyright: 2026 The kabi developers
License: MIT or Apache-2.0

License: MIT
$(sed -e 's/^$/./' -e 's/^/ /' LICENSE-MIT)

License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
}

control_kabi() {
    cat <<EOF
Package: kabi
Version: $2
Architecture: $1
Maintainer: $maintainer
Installed-Size: $3
Suggests: dracut, systemd
Section: admin
Priority: optional
Description: $summary
 kabi tells whether a kernel module will load on a kernel, and if not why, in
 the kernel's own words: it reads modules (modinfo, symbol versions, exports,
 signatures), knows a kernel's ABI (symvers, vmlinuz, the running kernel),
 writes kmod's indexes byte for byte (depmod), manages RHEL-style weak-updates
 links (weak-modules) and loads modules.
 .
 The package installs one static binary with its man pages and completions, a
 kernel-install plugin and kernel hooks that link compatible out-of-tree modules
 into a new kernel before its initramfs is built, an opt-in dracut module and a
 systemd unit (not enabled) that check at boot that the expected modules will
 load. kmod's tools are left alone: kabi-kmod-names has the kmod command names.
EOF
}

control_names() {
    cat <<EOF
Package: kabi-kmod-names
Version: $1
Architecture: all
Maintainer: $maintainer
Installed-Size: $2
Depends: kabi (>= $1)
Section: admin
Priority: optional
Description: kmod's command names for kabi (opt-in)
 Links named modinfo, depmod, modprobe, insmod, rmmod, lsmod and weak-modules
 to kabi, in /usr/lib/kabi/bin: a directory on no PATH, so kmod's tools stay
 what the system runs. Put it first on a PATH, or into an initramfs, to use
 kabi in their place. weak-modules, which Debian does not have, is also offered
 as /usr/sbin/weak-modules through update-alternatives.
EOF
}

# ---------------------------------------------------------------------------------------
build_rpm() {
    local top="$stage/rpmbuild" s="$stage/rpm-root"
    mkdir -p "$top"/{BUILD,RPMS,SOURCES,SPECS,SRPMS,BUILDROOT} "$s"
    bash scripts/install.sh --destdir "$s" --layout rpm --bin "$bin" --kmod-names >/dev/null
    local rpmdate
    rpmdate=$(LC_ALL=C date -u -d "$date 12:00" '+%a %b %d %Y')
    rpmbuild -bb --quiet \
        --define "_topdir $top" \
        --define "_rpmdir $out" \
        --define "_build_id_links none" \
        --define "stagedir $s" \
        --define "kabi_version $version" \
        --define "kabi_date $rpmdate" \
        --define "kabi_maintainer $maintainer" \
        --define "kabi_summary $summary" \
        dist/rpm/kabi.spec >/dev/null
    find "$out" -name "kabi*-$version-1.*.rpm" | sort
}

case $what in
    deb) build_deb ;;
    rpm) build_rpm ;;
    all) build_deb; build_rpm ;;
esac
