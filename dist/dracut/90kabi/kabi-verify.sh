#!/bin/sh
# dracut pre-udev hook: report, never block the boot.
if command -v kabi >/dev/null 2>&1; then
    kabi verify --quiet --timeout 30 || warn "kabi verify: some expected kernel modules will not load (exit $?)"
fi
