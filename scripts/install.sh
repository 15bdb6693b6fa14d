#!/usr/bin/env bash
# Install kabi: the binary, its man pages and shell completions, the systemd unit, the dracut
# module and the kernel-install plugin.
#
#   scripts/install.sh [--destdir DIR] [--prefix /usr] [--bin PATH] [--kmod-names]
#
# --kmod-names also installs the multicall names (modinfo, depmod, modprobe, insmod, rmmod,
# lsmod, weak-modules, weak-modules2) as symbolic links in PREFIX/lib/kabi/bin, for a PATH or an initramfs
# that should use kabi in place of kmod. Without --bin the release binary is built first.
set -euo pipefail
cd "$(dirname "$0")/.."
destdir="" prefix=/usr bin="" kmod_names=0
while [ $# -gt 0 ]; do
    case $1 in
        --destdir) destdir=$2; shift ;;
        --prefix) prefix=$2; shift ;;
        --bin) bin=$2; shift ;;
        --kmod-names) kmod_names=1 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$bin" ]; then
    cargo build --release --quiet --bin kabi
    bin=target/release/kabi
fi
root="$destdir$prefix"
install -Dm755 "$bin" "$root/bin/kabi"
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
"$bin" gen-docs "$gen"
for m in "$gen"/man/*.1; do install -Dm644 "$m" "$root/share/man/man1/$(basename "$m")"; done
install -Dm644 "$gen/completions/kabi.bash" "$root/share/bash-completion/completions/kabi"
install -Dm644 "$gen/completions/_kabi" "$root/share/zsh/vendor-completions/_kabi"
install -Dm644 "$gen/completions/kabi.fish" "$root/share/fish/vendor_completions.d/kabi.fish"
install -Dm644 dist/systemd/kabi-verify.service "$root/lib/systemd/system/kabi-verify.service"
install -Dm755 dist/dracut/90kabi/module-setup.sh "$root/lib/dracut/modules.d/90kabi/module-setup.sh"
install -Dm755 dist/dracut/90kabi/kabi-verify.sh "$root/lib/dracut/modules.d/90kabi/kabi-verify.sh"
install -Dm755 dist/kernel-install/50-kabi-weak-modules.install \
    "$root/lib/kernel/install.d/50-kabi-weak-modules.install"
if [ "$kmod_names" = 1 ]; then
    mkdir -p "$root/lib/kabi/bin"
    for n in modinfo depmod modprobe insmod rmmod lsmod weak-modules weak-modules2; do
        ln -sf "$prefix/bin/kabi" "$root/lib/kabi/bin/$n"
    done
fi
echo "installed kabi under $root"
