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
complete -c kabi -n "__fish_kabi_needs_command" -f -a "weak" -d 'Weak-updates state: kabi weak status'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "load" -d 'Load modules with their dependencies, as modprobe (checked first)'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "unload" -d 'Remove modules (-r: and their unused dependencies)'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "lsmod" -d 'List loaded modules'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "verify" -d 'Will the modules this host expects load on this kernel? (boot-time check)'
complete -c kabi -n "__fish_kabi_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kabi -n "__fish_kabi_using_subcommand info" -s F -l field -d 'Print only provided FIELD' -r
complete -c kabi -n "__fish_kabi_using_subcommand info" -s k -l set-version -d 'Use VERSION instead of `uname -r`' -r
complete -c kabi -n "__fish_kabi_using_subcommand info" -s b -l basedir -d 'Use DIR as filesystem root for /lib/modules' -r
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
complete -c kabi -n "__fish_kabi_using_subcommand modversions" -s b -l basedir -d 'Use DIR as filesystem root for /lib/modules' -r
complete -c kabi -n "__fish_kabi_using_subcommand modversions" -l exports -d 'List the module\'s own exports, with CRCs, in Module.symvers format'
complete -c kabi -n "__fish_kabi_using_subcommand modversions" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand check" -s k -l kernel -d 'Check against the installed kernel KVER (its symvers, modules and config under --root)' -r
complete -c kabi -n "__fish_kabi_using_subcommand check" -l symvers -d 'Check against a Module.symvers file (plain, .gz, .xz, .zst)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand check" -l vmlinuz -d 'Check against a kernel image (x86 bzImage): vmlinux\'s exports and CRCs from the image itself; with --kernel, the image overrides that kernel\'s symvers for vmlinux symbols' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand check" -s b -l root -d 'Filesystem root the kernel is installed under' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand check" -l running -d 'Check against the running kernel: /proc/kallsyms, and /proc/kcore for CRCs when readable (root); otherwise CRCs are reported as not verifiable'
complete -c kabi -n "__fish_kabi_using_subcommand check" -s v -l verbose -d 'Show every reason, note and unverified check'
complete -c kabi -n "__fish_kabi_using_subcommand check" -l json -d 'Print the verdicts as JSON'
complete -c kabi -n "__fish_kabi_using_subcommand check" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -s b -l root -d 'Filesystem root installed releases are under' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -s m -l modules -d 'Modules (files or directories) to check against NEW: which break, and through what' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -l vmlinux-only -d 'Only the vmlinux symbols of each side'
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -s v -l verbose -d 'List every symbol, not just the counts'
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -l json -d 'Print the comparison (and the verdicts of --modules) as JSON (docs/schemas/diff-abi.schema.json)'
complete -c kabi -n "__fish_kabi_using_subcommand diff-abi" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s b -l basedir -d 'Use DIR as the filesystem root for /lib/modules' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s C -l config -d 'Use these configuration files or directories instead of the depmod.d defaults' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s E -l symvers -d 'Module.symvers of the kernel: resolve its symbols and check CRCs (with -e, report)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s F -l filesyms -d 'System.map of the kernel: resolve its symbols' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s P -l symbol-prefix -d 'Architecture symbol prefix to ignore' -r
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -l cache -d 'Keep the scan cache in FILE instead of the module directory' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s j -l jobs -d 'Threads for scanning (default: one per CPU)' -r
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s a -l all -d 'Probe all modules (the default when no module is named)'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s A -l quick -d 'Only if a module is newer than modules.dep'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s e -l errsyms -d 'Report unresolved symbols and CRC mismatches (needs -E or -F)'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s n -l show -l dry-run -d 'Write the text files to standard output instead of the module directory'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s w -l warn -d 'Warn on duplicate dependencies, aliases and symbol versions'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s v -l verbose -d 'Print what was done (counts, cache use, files written)'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -l no-cache -d 'Do not read or write the scan cache'
complete -c kabi -n "__fish_kabi_using_subcommand depmod" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l basedir -d 'Filesystem root' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l dracut -d 'Rebuild the initramfs images of changed kernels with PROG (default: the root\'s dracut)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l add-modules -d 'Link the modules read from standard input into every compatible installed kernel'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l remove-modules -d 'Remove the links to the modules read from standard input'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l add-kernel -d 'Link every compatible module of the other kernels into KVER (default: running kernel)'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l remove-kernel -d 'Remove every link of KVER (default: running kernel)'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l dry-run -d 'Say what would be done; change nothing'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l verbose -d 'Print every decision'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l no-initramfs -d 'Neither rebuild nor name the initramfs images of changed kernels'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -l suse -d 'SUSE\'s conventions: /usr/lib/modules, links keep the module\'s top directory'
complete -c kabi -n "__fish_kabi_using_subcommand weak-modules" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and not __fish_seen_subcommand_from status help" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and not __fish_seen_subcommand_from status help" -f -a "status" -d 'For every kernel: each module of the other kernels\' extra/ and each weak-updates link: linked or not, compatible or not and why, dangling links'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and not __fish_seen_subcommand_from status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from status" -l basedir -d 'Filesystem root' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from status" -l suse -d 'SUSE\'s conventions: /usr/lib/modules, links keep the module\'s top directory'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from status" -l json -d 'Print the state as JSON (docs/schemas/weak-status.schema.json)'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from help" -f -a "status" -d 'For every kernel: each module of the other kernels\' extra/ and each weak-updates link: linked or not, compatible or not and why, dangling links'
complete -c kabi -n "__fish_kabi_using_subcommand weak; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s d -l dirname -d 'Filesystem root of /lib/modules' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand load" -s S -l set-version -d 'Kernel release (default: the running kernel\'s)' -r
complete -c kabi -n "__fish_kabi_using_subcommand load" -s j -l jobs -d 'Load with up to N threads where the dependency graph allows (with -a or --coldplug)' -r
complete -c kabi -n "__fish_kabi_using_subcommand load" -s n -l dry-run -d 'Print what would be done; load nothing'
complete -c kabi -n "__fish_kabi_using_subcommand load" -l show-depends -d 'Print the dependency chain as kmod does (insmod PATH PARAMS / builtin NAME)'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s q -l quiet -d 'Quiet: no error for a module that is not found'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s v -l verbose
complete -c kabi -n "__fish_kabi_using_subcommand load" -s f -l force -d 'Load even when kabi check predicts a failure; the kernel ignores versions'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s b -l use-blacklist -d 'Apply the blacklist to module names too'
complete -c kabi -n "__fish_kabi_using_subcommand load" -l no-check -d 'Skip kabi\'s prediction: let the kernel decide'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s a -l all -d 'Every argument is a module (no parameters)'
complete -c kabi -n "__fish_kabi_using_subcommand load" -l coldplug -d 'Load what the devices in /sys/devices ask for (their modalias)'
complete -c kabi -n "__fish_kabi_using_subcommand load" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s r -l remove-dependencies -d 'Also remove the dependencies no longer used'
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s v -l verbose
complete -c kabi -n "__fish_kabi_using_subcommand unload" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand lsmod" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand verify" -s k -l kernel -d 'Kernel release (default: the running kernel\'s)' -r
complete -c kabi -n "__fish_kabi_using_subcommand verify" -s b -l root -d 'Filesystem root' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand verify" -l timeout -d 'Give up after SECS seconds (exit 2): a boot must not wait on kabi' -r
complete -c kabi -n "__fish_kabi_using_subcommand verify" -l metrics -d 'Write a Prometheus textfile-collector file (atomically); skipped when its directory does not exist (no collector installed)' -r -F
complete -c kabi -n "__fish_kabi_using_subcommand verify" -l loaded -d 'Also every module in /proc/modules'
complete -c kabi -n "__fish_kabi_using_subcommand verify" -l json -d 'Print the report as JSON'
complete -c kabi -n "__fish_kabi_using_subcommand verify" -s q -l quiet -d 'Print only the modules with problems and the summary line'
complete -c kabi -n "__fish_kabi_using_subcommand verify" -s h -l help -d 'Print help'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "info" -d 'Show a module\'s information, exactly as kmod\'s modinfo does (or --json)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "modversions" -d 'Dump a module\'s imported symbol versions (__versions), as modprobe --dump-modversions'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "check" -d 'Will these modules load on that kernel? Every reason, in the kernel\'s words'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "diff-abi" -d 'What changed between two kernels\' ABIs, and which modules that breaks'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "depmod" -d 'Generate modules.dep and the binary indexes, byte for byte as kmod\'s depmod'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "weak-modules" -d 'RHEL\'s weak-modules: link compatible modules into other kernels\' weak-updates/'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "weak" -d 'Weak-updates state: kabi weak status'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "load" -d 'Load modules with their dependencies, as modprobe (checked first)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "unload" -d 'Remove modules (-r: and their unused dependencies)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "lsmod" -d 'List loaded modules'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "verify" -d 'Will the modules this host expects load on this kernel? (boot-time check)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and not __fish_seen_subcommand_from info modversions check diff-abi depmod weak-modules weak load unload lsmod verify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kabi -n "__fish_kabi_using_subcommand help; and __fish_seen_subcommand_from weak" -f -a "status" -d 'For every kernel: each module of the other kernels\' extra/ and each weak-updates link: linked or not, compatible or not and why, dangling links'
