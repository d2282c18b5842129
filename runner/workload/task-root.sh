# The root of a sandboxed task, built from nothing (runner/workload/task-root.ts builds the argv).
#
# Runs as root as the first program of fresh mount, PID and IPC namespaces (`unshare --mount --pid
# --ipc --fork --propagation private`), so nothing it mounts is seen outside. It mounts a fresh tmpfs over ROOT,
# puts in it only what the arguments name, pivots into it and detaches the host's whole mount table, so no
# mount of the host (other software's network namespaces, FUSE, container overlays, the runner's
# dirs) is in the task's namespace — CRIU dumps and restores it whatever the host holds. Then it
# becomes the task's user and execs the command, which keeps its PID (PID 1 of the namespace).
#
# Each program started here costs a fork and an exec, several ms each on a paravirtualized host, so
# the work is batched: one `cp`, one `mkdir`, and `mount -a` twice for every mount (a start ran ~65
# programs before, ~9 now).
#
# Arguments: `ROOT UID GID PDEATHSIG CWD COPIES EARLY_FSTAB FSTAB op… -- command…`
#   ROOT       an existing dir to mount the new root's tmpfs over (source `stasis-root`)
#   UID GID    the user to become; PDEATHSIG the signal the command gets when its parent dies (empty:
#              none; a change of uid clears the one `unshare --kill-child` set); CWD where it starts
#   COPIES     host files, symlinks and device nodes copied as themselves to their own path inside the
#              root, one path a line (read-only once built)
#   EARLY_FSTAB fstab(5) lines mounted first, targets under ROOT: /proc over ROOT/proc, the task's
#              /tmp and /dev/shm. Both fstab files are written under ROOT/proc, so /proc covers them.
#   FSTAB      fstab(5) lines of the other mounts, in order, mounted by the op `mounts`: binds made
#              read-only and nosuid by `mount` itself (`bind,ro,nosuid,nodev`), a dir's mount point
#              made by `X-mount.mkdir` (inside a tmpfs mounted by an earlier line, too)
# ops, in order, paths as the task sees them (no path in COPIES holds a newline):
#   empty DST      an empty file (the mount point of a file), its dir made if missing
#   file DST TEXT  a file holding TEXT (mode 0644: the script's umask is 022)
#   link TARGET DST  a symlink DST -> TARGET
#   node DST MAJOR MINOR  a character device, mode 0666 (where the host's own could not be copied)
#   mounts         mount FSTAB
#   copy SRC DST   copy the file or symlink SRC to DST inside the root, its dir made if missing
# What always happens: the root itself is remounted read-only last. fds: every fd it gets passes to
# the command unchanged (the command is the supervisor, whose fd contract is in supervisor.sh).
set -eu
umask 022
root="$1"; uid="$2"; gid="$3"; pdeathsig="$4"; cwd="$5"; copies="$6"; early="$7"; fstab="$8"; shift 8
nl='
'
# The dir of a path inside the root, made if missing (no `dirname` or `mkdir` run when it is there).
parent() { [ -d "$root${1%/*}" ] || mkdir -p "$root${1%/*}"; }

mount -t tmpfs -o mode=0755,size=16m,nosuid stasis-root "$root"
cd "$root"
if [ -n "$copies" ]; then
  # Split on newlines only, never globbed.
  set -f; IFS=$nl
  cp -R -P --parents --preserve=mode,timestamps -t "$root" -- $copies
  set +f; IFS=" 	$nl"
fi
mkdir -p proc dev/shm tmp etc
printf '%s' "$early" > proc/.fstab-early
printf '%s' "$fstab" > proc/.fstab
# Read through this fd once /proc covers the file.
exec 9< proc/.fstab
mount -a -T proc/.fstab-early
while [ "$1" != "--" ]; do
  case "$1" in
    empty) parent "$2"; [ -e "$root$2" ] || : > "$root$2"; shift 2;;
    file) parent "$2"; printf '%s' "$3" > "$root$2"; shift 3;;
    link) parent "$3"; ln -s "$2" "$root$3"; shift 3;;
    node) mknod -m 0666 "$root$2" c "$3" "$4"; shift 4;;
    mounts) mount -a -T /proc/self/fd/9; shift;;
    copy) parent "$3"; cp -P --preserve=mode,timestamps "$2" "$root$3"; shift 3;;
    *) echo "stasis task root: unknown op $1" >&2; exit 125;;
  esac
done
shift
exec 9<&-

# Into the new root; the host's mount table goes with the old one, put on /tmp and detached there.
pivot_root . tmp
cd /
umount -l /tmp
mount -o remount,bind,ro,nosuid /
cd "$cwd"
set -- --no-new-privs ${pdeathsig:+--pdeathsig "$pdeathsig"} -- "$@"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"
