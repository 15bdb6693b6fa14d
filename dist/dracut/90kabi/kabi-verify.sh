#!/bin/sh
# dracut pre-udev hook (sourced by dracut's init): `kabi verify` on the booting kernel (its
# ABI from /proc/kallsyms and /proc/kcore: the image holds no symvers). It reports and never
# blocks the boot: nothing on the console on a healthy host (the summary goes to the log
# only); otherwise a warning, then kabi's report with the reasons, one warning per line.
if command -v kabi >/dev/null 2>&1; then
    kabi_out=$(kabi verify --quiet --timeout 30 2>&1)
    kabi_rc=$?
    case $kabi_rc in
        0) info "$kabi_out" ;;
        1) warn "kabi verify: some expected kernel modules will not load:" ;;
        *) warn "kabi verify: could not verify the kernel's modules (exit $kabi_rc):" ;;
    esac
    if [ "$kabi_rc" -ne 0 ]; then
        printf '%s\n' "$kabi_out" | while IFS= read -r kabi_line; do
            case $kabi_line in
                "kabi verify: "*) warn "$kabi_line" ;;
                *) warn "kabi verify: $kabi_line" ;;
            esac
        done
    fi
    unset kabi_out kabi_rc kabi_line
fi
