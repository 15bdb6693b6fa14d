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
#   host_lists_lock
#
# Prints the lock for updating the machine's own lists (one per machine, not per cache).
# Needs: $cache, apt-get, flock, timeout.

apt_lists_update() {
    local lock=$1 fd try tries=3 before after
    shift
    # the machine's own lists (no Dir::State::Lists given) can only be updated by root
    [ $# -gt 0 ] || [ "$(id -u)" = 0 ] || tries=1
    mkdir -p "$(dirname "$lock")"
    before=$(stat -c %Y "$lock.done" 2>/dev/null || echo 0)
    if ! exec {fd}>>"$lock"; then
        echo "apt-lists.sh: cannot open the lock $lock" >&2
        return 1
    fi
    if ! flock -w 900 "$fd"; then
        echo "apt-lists.sh: timed out after 900 s waiting for $lock (another apt-get update)" >&2
        exec {fd}>&-
        return 1
    fi
    after=$(stat -c %Y "$lock.done" 2>/dev/null || echo 0)
    # another caller updated these lists while this one waited: done
    if [ "$after" -gt "$before" ]; then
        exec {fd}>&-
        return 0
    fi
    for try in $(seq "$tries"); do
        # bounded: the waiters' 900 s must cover all tries
        if timeout 240 apt-get "$@" update -qq >/dev/null 2>&1; then
            touch "$lock.done"
            exec {fd}>&-
            return 0
        fi
        [ "$try" = "$tries" ] || sleep $((try * 5))
    done
    exec {fd}>&-
    return 1
}

# The lock for updates of the machine's own lists (/var/lib/apt/lists): one for the whole
# machine, whatever cache a caller uses (tests may each have their own).
host_lists_lock() {
    if [ -d /run/lock ] && [ -w /run/lock ]; then
        echo /run/lock/kabi-apt-update.lock
    else
        echo "$cache/.lock-apt-update"
    fi
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
