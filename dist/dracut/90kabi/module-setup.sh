#!/bin/bash
# dracut module "kabi": put kabi into the initramfs and run `kabi verify` there before udev
# starts, so that a kernel whose expected modules will not load says so on the console, with
# the reasons, before the root is mounted (see kabi-verify.sh).
#
# Opt-in: included only when asked for (add_dracutmodules+=" kabi ", see
# /etc/dracut.conf.d/90-kabi.conf, or dracut --add kabi).

# Where the package installs kabi (scripts/install.sh writes its own prefix here).
kabi_installed=/usr/bin/kabi

# The kabi to install: $kabi_binary (dracut.conf.d), the installed one, or the first on
# dracut's path (DRACUT_PATH). Paths are inside --sysroot when dracut has one.
kabi_path() {
    local b
    for b in "${kabi_binary-}" "$kabi_installed"; do
        if [[ -n $b && -x ${dracutsysrootdir-}$b && ! -d ${dracutsysrootdir-}$b ]]; then
            printf '%s\n' "$b"
            return 0
        fi
    done
    find_binary kabi
}

check() {
    if [[ -z $(kabi_path) ]]; then
        dinfo "kabi: no kabi in ${kabi_binary:+$kabi_binary, }$kabi_installed or on dracut's path ($DRACUT_PATH)"
        return 1
    fi
    # only when asked for, never by default
    return 255
}

depends() {
    return 0
}

install() {
    inst_binary "$(kabi_path)" /usr/bin/kabi
    inst_hook pre-udev 10 "$moddir/kabi-verify.sh"
}
