#!/usr/bin/env bash
# Install kabi: the binary, its man pages (section 8) and shell completions, the licences and
# the changelog, the systemd unit, the dracut module and its opt-in configuration, the
# kernel-install plugin, and on Debian the kernel hooks and the depmod.d search order.
# scripts/package.sh stages the .deb and the .rpm with it.
#
#   scripts/install.sh [--destdir DIR] [--prefix /usr] [--layout debian|rpm] [--bin PATH]
#                      [--kmod-names] [--no-kabi]
#
# --layout chooses the paths each distribution uses (default: debian on Debian and its
# derivatives, rpm elsewhere):
#                     debian                                 rpm (RHEL, Fedora, SUSE)
#   systemd unit      /lib/systemd/system                    /usr/lib/systemd/system
#   zsh completion    /usr/share/zsh/vendor-completions      /usr/share/zsh/site-functions
#   licences          /usr/share/doc/kabi                    /usr/share/licenses/kabi
#   kernel hooks      /etc/kernel/postinst.d, postrm.d       (kernel-install only)
#   depmod.d          /lib/depmod.d/kabi-weak-updates.conf   (the distribution's own order)
# Everywhere: the dracut module in /usr/lib/dracut/modules.d/90kabi (dracut looks nowhere
# else), its opt-in file /etc/dracut.conf.d/90-kabi.conf, the kernel-install plugin
# /usr/lib/kernel/install.d/45-kabi-weak-modules.install. With a --prefix other than /usr,
# the binary, pages and completions go below it and every script names PREFIX/bin/kabi.
#
# --kmod-names installs the kmod command names (modinfo, depmod, modprobe, insmod, rmmod,
# lsmod, weak-modules, weak-modules2) as links to kabi in PREFIX/lib/kabi/bin, a directory on no PATH:
# kmod's own tools are never replaced; put it first on a PATH (or an initramfs) to use them.
# --no-kabi installs only those names (the kabi-kmod-names package). Without --bin the
# release binary is built first.
set -euo pipefail
cd "$(dirname "$0")/.."
destdir="" prefix=/usr bin="" kmod_names=0 kabi=1 layout=""
while [ $# -gt 0 ]; do
    case $1 in
        --destdir) destdir=$2; shift ;;
        --prefix) prefix=$2; shift ;;
        --bin) bin=$2; shift ;;
        --layout) layout=$2; shift ;;
        --kmod-names) kmod_names=1 ;;
        --no-kabi) kabi=0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$layout" ]; then
    if [ -f /etc/debian_version ]; then layout=debian; else layout=rpm; fi
fi
case $layout in
    debian) unitdir=/lib/systemd/system zshdir=/share/zsh/vendor-completions
            licdir=/share/doc/kabi ;;
    rpm) unitdir=/usr/lib/systemd/system zshdir=/share/zsh/site-functions
         licdir=/share/licenses/kabi ;;
    *) echo "install.sh: --layout is debian or rpm, not $layout" >&2; exit 2 ;;
esac
[ "$prefix" = /usr ] || unitdir=$prefix/lib/systemd/system
root="$destdir$prefix"
kabi_path="$prefix/bin/kabi"

# a script of dist/ with the installed kabi's path in place of /usr/bin/kabi
script() { # SRC DEST MODE
    install -d "$(dirname "$2")"
    sed "s|/usr/bin/kabi|$kabi_path|g" "$1" >"$2"
    chmod "$3" "$2"
}

if [ "$kabi" = 1 ]; then
    if [ -z "$bin" ]; then
        cargo build --release --quiet --bin kabi
        bin=target/release/kabi
    fi
    install -Dm755 "$bin" "$root/bin/kabi"
    for m in dist/man/*.8; do install -Dm644 "$m" "$root/share/man/man8/$(basename "$m")"; done
    install -Dm644 dist/completions/kabi.bash "$root/share/bash-completion/completions/kabi"
    install -Dm644 dist/completions/_kabi "$root$zshdir/_kabi"
    install -Dm644 dist/completions/kabi.fish "$root/share/fish/vendor_completions.d/kabi.fish"
    install -Dm644 LICENSE-MIT "$root$licdir/LICENSE-MIT"
    install -Dm644 LICENSE-APACHE "$root$licdir/LICENSE-APACHE"
    install -Dm644 CHANGELOG.md "$root/share/doc/kabi/CHANGELOG.md"
    script dist/systemd/kabi-verify.service "$destdir$unitdir/kabi-verify.service" 644
    script dist/dracut/90kabi/module-setup.sh "$destdir/usr/lib/dracut/modules.d/90kabi/module-setup.sh" 755
    script dist/dracut/90kabi/kabi-verify.sh "$destdir/usr/lib/dracut/modules.d/90kabi/kabi-verify.sh" 755
    install -Dm644 dist/dracut/dracut.conf.d/90-kabi.conf "$destdir/etc/dracut.conf.d/90-kabi.conf"
    script dist/kernel-install/45-kabi-weak-modules.install \
        "$destdir/usr/lib/kernel/install.d/45-kabi-weak-modules.install" 755
    if [ "$layout" = debian ]; then
        script dist/kernel/postinst.d/45-kabi "$destdir/etc/kernel/postinst.d/45-kabi" 755
        script dist/kernel/postrm.d/45-kabi "$destdir/etc/kernel/postrm.d/45-kabi" 755
        install -Dm644 dist/depmod.d/kabi-weak-updates.conf "$destdir/lib/depmod.d/kabi-weak-updates.conf"
    fi
fi
if [ "$kmod_names" = 1 ]; then
    install -d "$root/lib/kabi/bin"
    for n in modinfo depmod modprobe insmod rmmod lsmod weak-modules weak-modules2; do
        ln -sfn "$kabi_path" "$root/lib/kabi/bin/$n"
    done
fi
echo "installed kabi under ${destdir:-/} ($layout layout, prefix $prefix)"
