# Sourced by the fetch scripts of testdata/: apt list updates that are safe to run side by side.
#
#   apt_lists_update LOCK [APT OPTION...]
#
# Runs `apt-get [APT OPTION...] update` while holding LOCK (a file; flock, bounded wait), so
# that two tests fetching kernels at once never run apt-get on the same list directory
# together: the second would fail on apt's own lock and go on with the lists half written.
# Up to three tries, a pause between them (a mirror in sync fails for a moment). Returns 0
# when an update succeeded, 1 when all tries failed; a caller that waited on LOCK while
# another process updated the same lists does not update again (LOCK.done's time says so).
#
#   private_apt_lists ARCH
#
# Sets apt_opts to the options of the private list directory for the foreign architecture
# ARCH ($cache/apt-ARCH: no architecture is added to the machine's dpkg) and updates those
# lists the first time, under the directory's lock. The directory is marked updated only when
# an update succeeded and left a Packages list, so a failed first try is retried by the next
# caller instead of leaving empty lists for good.
# Needs: $cache, die(), apt-get, flock.

apt_lists_update() {
    local lock=$1 fd try before after
    shift
    before=$(stat -c %Y "$lock.done" 2>/dev/null || echo 0)
    exec {fd}>>"$lock"
    flock -w 900 "$fd" || die "timed out waiting for $lock (another apt-get update)"
    after=$(stat -c %Y "$lock.done" 2>/dev/null || echo 0)
    # another caller updated these lists while this one waited: done
    if [ "$after" -gt "$before" ]; then
        exec {fd}>&-
        return 0
    fi
    for try in 1 2 3; do
        if command apt-get "$@" update -qq >/dev/null 2>&1; then
            touch "$lock.done"
            exec {fd}>&-
            return 0
        fi
        [ "$try" = 3 ] || sleep $((try * 5))
    done
    exec {fd}>&-
    return 1
}

private_apt_lists() {
    local arch=$1 private="$cache/apt-$1"
    mkdir -p "$private/lists/partial" "$private/cache/archives/partial"
    apt_opts=(-o "Dir::State::Lists=$private/lists" -o "Dir::Cache=$private/cache"
              -o "APT::Architectures::=$arch" -o "APT::Architecture=$arch")
    if [ -f "$private/.updated" ] && compgen -G "$private/lists/*_Packages*" >/dev/null; then
        return 0
    fi
    if apt_lists_update "$private/.lock-update" "${apt_opts[@]}" \
        && compgen -G "$private/lists/*_Packages*" >/dev/null; then
        touch "$private/.updated"
    else
        echo "apt-lists.sh: updating the $arch lists in $private failed; the next caller tries again" >&2
    fi
}
