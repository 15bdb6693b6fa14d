#!/bin/bash
# dracut module: install the static kabi and run `kabi verify` early in the initramfs, so
# that a kernel whose modules will not load says so on the console before the root is mounted.

check() {
    require_binaries kabi || return 1
    return 0
}

depends() {
    return 0
}

install() {
    inst_binary "$(command -v kabi)" /usr/bin/kabi
    inst_hook pre-udev 10 "$moddir/kabi-verify.sh"
}
