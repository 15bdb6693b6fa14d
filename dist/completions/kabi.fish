# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kabi_global_optspecs
    string join \n h/help V/version
end

function __fish_kabi_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kabi_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kabi_using_subcommand
    set -l cmd (__fish_kabi_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kabi -n "__fish_kabi_needs_command" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_needs_command" -s V -l version -d 'Print version'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "info" -d 'Show a module\'s information, exactly as kmod\'s modinfo does (or --json)'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "modversions" -d 'Dump a module\'s imported symbol versions (__versions), as modprobe --dump-modversions'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "check" -d 'Will these modules load on that kernel? Every reason, in the kernel\'s words'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "diff-abi" -d 'What changed between two kernels\' ABIs, and which modules that breaks'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "depmod" -d 'Generate modules.dep and the binary indexes, byte for byte as kmod\'s depmod'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "weak-modules" -d 'RHEL\'s weak-modules: link compatible modules into other kernels\' weak-updates/'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "weak-modules2" -d 'SUSE\'s weak-modules2: link compatible kernel module packages (KMPs) into other kernels'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "weak" -d 'Weak-updates state: kabi weak status'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "load" -d 'Load modules with their dependencies, as modprobe (checked first)'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "unload" -d 'Remove modules (-r: and their unused dependencies)'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "lsmod" -d 'List loaded modules'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "verify" -d 'Will the modules this host expects load on this kernel? (boot-time check)'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "sign" -d 'Sign modules as scripts/sign-file does (--verify: would the kernel accept them?)'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kabi -n "__fish_kabi_using_subcommand info" -s F -l field -d 'Print only provided FIELD' -r
complete -c kabi -n "__fish_kabi_using_subcommand info" -s k -l set-version -d 'Use VERSION instead of `uname -r`' -r
complete -c kabi -n "__fish_kabi_using_subcommand info" -l root -d 'Use DIR as filesystem root for /lib/modules (-b DIR and --basedir DIR, the old spellings, are accepted too)' -r
complete -c kabi -n "__fish_kabi_using_subcommand info" -s a -l author -d 'Print only \'author\''
complete -c kabi -n "__fish_kabi_using_subcommand info" -s d -l description -d 'Print only \'description\''
complete -c kabi -n "__fish_kabi_using_subcommand info" -s l -l license -d 'Print only \'license\''
complete -c kabi -n "__fish_kabi_using_subcommand info" -s p -l parameters -d 'Print only \'parm\''
complete -c kabi -n "__fish_kabi_using_subcommand info" -s n -l filename -d 'Print only \'filename\''
complete -c kabi -n "__fish_kabi_using_subcommand info" -s 0 -l null -d 'Use \\0 instead of \\n'
complete -c kabi -n "__fish_kabi_using_subcommand info" -s m -l modname -d 'Handle argument as module name instead of alias or filename'
complete -c kabi -n "__fish_kabi_using_subcommand info" -l json -d 'Print the facts as JSON (with imports, exports and undefined symbols)'
complete -c kabi -n "__fish_kabi_using_subcommand info" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand modversions" -s k -l set-version -d 'Use VERSION instead of `uname -r` to look names up' -r
complete -c kabi -n "__fish_kabi_using_subcommand modversions" -l root -d 'Use DIR as filesystem root for /lib/modules (-b DIR and --basedir DIR, the old spellings, are accepted too)' -r
complete -c kabi -n "__fish_kabi_using_subcommand modversions" -l exports -d 'List the module\'s own exports, with CRCs, in Module.symvers format'
complete -c kabi -n "__fish_kabi_using_subcommand modversions" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand check" -s k -l kernel -d 'Check against the installed kernel KVER (its symvers, modules and config under --root)' -r
complete -c kabi -n "__fish_kabi_using_subcommand check" -l symvers -d 'Check against a Module.symvers file (plain, .gz, .xz, .zst)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand check" -l vmlinuz -d 'Check against a kernel image (x86 bzImage): vmlinux\'s exports and CRCs from the image itself; with --kernel, the image overrides that kernel\'s symvers for vmlinux symbols' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand check" -l root -d 'Filesystem root the kernel is installed under (-b DIR, the old spelling, is accepted too)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand check" -l trusted-cert -d 'Trust the certificates of FILE (PEM, any number; or DER) for module signatures, as if they were in the kernel\'s secondary keyring (repeatable)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand check" -l lockdown -d 'Check as if the kernel were locked down at this level (at integrity and above a module without a valid signature is refused with EPERM)' -r -f -a "none\t''
integrity\t''
confidentiality\t''"
complete -c kabi -n "__fish_kabi_using_subcommand check" -l stablelist -d 'Report, apart from the verdict, every kernel symbol a module uses that is not on this kABI stablelist (RHEL\'s kabi_stablelist_<arch>, or the directory holding it, e.g. /lib/modules/kabi-current), as Red Hat\'s ksc does' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand check" -l running -d 'Check against the running kernel: /proc/kallsyms, and /proc/kcore for CRCs when readable (root); otherwise CRCs are reported as not verifiable'
complete -c kabi -n "__fish_kabi_using_subcommand check" -s v -l verbose -d 'Show every reason, note and unverified check'
complete -c kabi -n "__fish_kabi_using_subcommand check" -l json -d 'Print the verdicts as JSON'
complete -c kabi -n "__fish_kabi_using_subcommand check" -l sig-enforce -d 'Check as if signatures were enforced (module.sig_enforce=1)'
complete -c kabi -n "__fish_kabi_using_subcommand check" -l no-keys -d 'Do not read the kernel\'s trusted keys (image, /proc/keys, UEFI db and MOK): check signatures for form and enforcement only'
complete -c kabi -n "__fish_kabi_using_subcommand check" -l list-keys -d 'List the kernel\'s trusted keys and where each comes from, then the verdicts'
complete -c kabi -n "__fish_kabi_using_subcommand check" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -l root -d 'Filesystem root installed releases are under (-b DIR, the old spelling, is accepted too)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -s m -l modules -d 'Modules (files or directories) to check against NEW: which break, and through what' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -l vmlinux-only -d 'Only the vmlinux symbols of each side'
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -s v -l verbose -d 'List every symbol, not just the counts'
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -l json -d 'Print the comparison (and the verdicts of --modules) as JSON (docs/schemas/diff-abi.schema.json)'
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s C -l config -d 'Use these configuration files or directories instead of the depmod.d defaults' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s E -l symvers -d 'Module.symvers of the kernel: resolve its symbols and check CRCs (with -e, report)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s F -l filesyms -d 'System.map of the kernel: resolve its symbols' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s P -l symbol-prefix -d 'Architecture symbol prefix to ignore' -r
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -l cache -d 'Keep the scan cache in FILE instead of the module directory' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s j -l jobs -d 'Threads for scanning (default: one per CPU)' -r
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -l root -d 'Use DIR as the filesystem root for /lib/modules (-b DIR and --basedir DIR, the old spellings, are accepted too)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s a -l all -d 'Probe all modules (the default when no module is named)'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s A -l quick -d 'Only if a module is newer than modules.dep'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s e -l errsyms -d 'Report unresolved symbols and CRC mismatches (needs -E or -F)'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s n -l show -l dry-run -d 'Write the text files to standard output instead of the module directory'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s w -l warn -d 'Warn on duplicate dependencies, aliases and symbol versions'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s v -l verbose -d 'Print what was done (counts, cache use, files written)'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -l no-cache -d 'Do not read or write the scan cache'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l basedir -d 'Filesystem root' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l dracut -d 'Rebuild the initramfs images of changed kernels with PROG (default: the host\'s dracut)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l add-modules -d 'Link the modules read from standard input into every compatible installed kernel'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l remove-modules -d 'Remove the links to the modules read from standard input'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l add-kernel -d 'Link every compatible module of the other kernels into KVER (default: running kernel)'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l remove-kernel -d 'Remove every link of KVER (default: running kernel)'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l dry-run -d 'Say what would be done; change nothing'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l verbose -d 'Print every decision'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l no-initramfs -d 'Neither rebuild nor name the initramfs images of changed kernels'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l suse -d 'SUSE\'s conventions: /usr/lib/modules, links keep the module\'s top directory'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l logfile -d 'Append standard error to FILE (a relative name is taken in /var/log)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l root -d 'Filesystem root to work on' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l add-kmp -d 'To be called in %post of a KMP: link KMP-NAME-VERSION-RELEASE into every compatible kernel'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l remove-kmp -d 'To be called in %postun of a KMP (module list on standard input): remove its links, link another version instead'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l add-kernel -d 'To be called in %post of a kernel: link every compatible KMP into KREL (default: the running kernel)'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l remove-kernel -d 'To be called in %postun of a kernel: remove KREL\'s links (default: the running kernel)'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l add-kernel-modules -d 'To be called in %post of a kernel subpackage (module list on standard input)'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l remove-kernel-modules -d 'To be called in %postun of a kernel subpackage (module list on standard input)'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -s v -l verbose -d 'Say what is done (repeat for more)'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l dry-run -d 'Change nothing; print what would change'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l debug -d 'Print the symbol errors behind each refusal'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -l usage -d 'Print the usage lines'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules2" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and not __fish_seen_subcommand_from status help" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'For every kernel: each module of the other kernels\' extra/ and each weak-updates link: linked or not, compatible or not and why, dangling links'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from status" -l root -d 'Filesystem root (--basedir DIR, the old spelling, is accepted too)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from status" -l suse -d 'SUSE\'s conventions: /usr/lib/modules, links keep the module\'s top directory'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from status" -l json -d 'Print the state as JSON (docs/schemas/weak-status.schema.json)'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from help" -f -a "status" -d 'For every kernel: each module of the other kernels\' extra/ and each weak-updates link: linked or not, compatible or not and why, dangling links'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kabi -n "__fish_kabi_using_subcommand load" -l root -d 'Root of the module tree and of the modprobe.d directories' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand load" -s S -l set-version -d 'Kernel release (default: the running kernel\'s)' -r
complete -c kabi -n "__fish_kabi_using_subcommand load" -s C -l config -d 'modprobe.d files or directories to read instead of the default ones' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand load" -s j -l jobs -d 'Load with up to N threads where the dependency graph allows (with -a or --coldplug)' -r
complete -c kabi -n "__fish_kabi_using_subcommand load" -s n -l dry-run -d 'Do not load; with -v, print what would be done'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s D -l show-depends -d 'Print the dependency chain as kmod does (insmod PATH PARAMS / builtin NAME)'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s q -l quiet -d 'Quiet: no messages'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s v -l verbose -d 'Print each insmod (and install command) as it is done'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s f -l force -d 'Load even when kabi check predicts a failure; the kernel ignores versions'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s b -l use-blacklist -d 'Apply the blacklist to module names too (aliases always are)'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s i -l ignore-install -d 'Skip modprobe.d install commands'
complete -c kabi -n "__fish_kabi_using_subcommand load" -l first-time -d 'Fail if the module is already loaded'
complete -c kabi -n "__fish_kabi_using_subcommand load" -l no-check -d 'Skip kabi\'s prediction: let the kernel decide'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s a -l all -d 'Every argument is a module (no parameters)'
complete -c kabi -n "__fish_kabi_using_subcommand load" -l coldplug -d 'Load what the devices in /sys/devices ask for (their modalias)'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s w -l wait -d 'Wait up to MSEC for the module\'s reference count to drop' -r
complete -c kabi -n "__fish_kabi_using_subcommand unload" -l root -d 'Root of the module tree and of the modprobe.d directories (with -r)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s S -l set-version -d 'Kernel release (default: the running kernel\'s)' -r
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s r -l remove-dependencies -d 'Remove as modprobe -r does: remove commands, soft dependencies, and the dependencies no longer used'
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s v -l verbose -d 'Print each rmmod'
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s n -l dry-run -d 'Do not remove; with -v, print what would be done'
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s f -l force -d 'Force the removal (dangerous)'
complete -c kabi -n "__fish_kabi_using_subcommand unload" -l remove-holders -d 'With -r, remove the modules holding it first'
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand lsmod" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand verify" -s k -l kernel -d 'Kernel release (default: the running kernel\'s)' -r
complete -c kabi -n "__fish_kabi_using_subcommand verify" -l root -d 'Filesystem root (-b DIR, the old spelling, is accepted too)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand verify" -l timeout -d 'Give up after SECS seconds (exit 2): a boot must not wait on kabi' -r
complete -c kabi -n "__fish_kabi_using_subcommand verify" -l metrics -d 'Write a Prometheus textfile-collector file (atomically); skipped when its directory does not exist (no collector installed)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand verify" -l loaded -d 'Also every module in /proc/modules'
complete -c kabi -n "__fish_kabi_using_subcommand verify" -l json -d 'Print the report as JSON'
complete -c kabi -n "__fish_kabi_using_subcommand verify" -s q -l quiet -d 'Print only the modules with problems and the summary line'
complete -c kabi -n "__fish_kabi_using_subcommand verify" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand sign" -l hash -d 'Digest algorithm (what CONFIG_MODULE_SIG_HASH names)' -r -f -a "sha1\t''
sha224\t''
sha256\t''
sha384\t''
sha512\t''"
complete -c kabi -n "__fish_kabi_using_subcommand sign" -l key -d 'Private key, PEM (PKCS#8, PKCS#1 RSA or SEC1 EC; the kernel\'s signing_key.pem, which also holds the certificate, works) or DER PKCS#8' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand sign" -l cert -d 'The signer\'s X.509 certificate, PEM or DER (default: the certificate in the key file)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand sign" -s o -l output -d 'Write the signed module to FILE and keep the original (default: replace the module, atomically)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand sign" -l trusted-cert -d '--verify: trust these certificates (repeatable)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand sign" -l vmlinuz -d '--verify: the keys built into this kernel image' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand sign" -s k -l kernel -d '--verify: the keys of the installed kernel KVER (its image, this host\'s UEFI db and MOK)' -r
complete -c kabi -n "__fish_kabi_using_subcommand sign" -l root -d 'Filesystem root for --kernel and --running (-b DIR, the old spelling, is accepted too)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand sign" -l keyid -d 'Name the signer by its subjectKeyIdentifier instead of issuer and serial (sign-file -k)'
complete -c kabi -n "__fish_kabi_using_subcommand sign" -s d -l detached -d 'Write only the detached PKCS#7 signature, to MODULE.p7s (or -o FILE); the module is not changed (sign-file -d)'
complete -c kabi -n "__fish_kabi_using_subcommand sign" -s p -l save-sig -d 'Also write the PKCS#7 signature to MODULE.p7s (sign-file -p)'
complete -c kabi -n "__fish_kabi_using_subcommand sign" -l verify -d 'Do not sign: say whether the kernel would accept each module\'s signature (against --trusted-cert, a kernel image, an installed kernel or the running kernel)'
complete -c kabi -n "__fish_kabi_using_subcommand sign" -l running -d '--verify: the running kernel\'s keyrings'
complete -c kabi -n "__fish_kabi_using_subcommand sign" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "info" -d 'Show a module\'s information, exactly as kmod\'s modinfo does (or --json)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "modversions" -d 'Dump a module\'s imported symbol versions (__versions), as modprobe --dump-modversions'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "check" -d 'Will these modules load on that kernel? Every reason, in the kernel\'s words'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "diff-abi" -d 'What changed between two kernels\' ABIs, and which modules that breaks'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "depmod" -d 'Generate modules.dep and the binary indexes, byte for byte as kmod\'s depmod'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "weak-modules" -d 'RHEL\'s weak-modules: link compatible modules into other kernels\' weak-updates/'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "weak-modules2" -d 'SUSE\'s weak-modules2: link compatible kernel module packages (KMPs) into other kernels'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "weak" -d 'Weak-updates state: kabi weak status'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "load" -d 'Load modules with their dependencies, as modprobe (checked first)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "unload" -d 'Remove modules (-r: and their unused dependencies)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "lsmod" -d 'List loaded modules'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "verify" -d 'Will the modules this host expects load on this kernel? (boot-time check)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "sign" -d 'Sign modules as scripts/sign-file does (--verify: would the kernel accept them?)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak-modules2 weak load unload lsmod verify sign help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and __fish_seen_subcommand_from weak" -f -a "status" -d 'For every kernel: each module of the other kernels\' extra/ and each weak-updates link: linked or not, compatible or not and why, dangling links'
