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
# the work is batched: one `mkdir`, one `cp`, one `mount -a` for every mount (a start ran ~65
# programs before, ~8 now).
#
# Arguments: `ROOT UID GID PDEATHSIG CWD DIRS COPIES FSTAB op… -- command…`
#   ROOT       an existing dir to mount the new root's tmpfs over (source `stasis-root`)
#   UID GID    the user to become; PDEATHSIG the signal the command gets when its parent dies (empty:
#              none; a change of uid clears the one `unshare --kill-child` set); CWD where it starts
#   DIRS       dirs to make inside the root, one path a line, relative to it (always includes `proc`)
#   COPIES     host files, symlinks and device nodes copied as themselves to their own path inside the
#              root, one path a line (read-only once built)
#   FSTAB      fstab(5) lines of every mount, in order, targets under ROOT: the first mounts /proc
#              over ROOT/proc, where this file is written, so it ends up covered; binds made
#              read-only and nosuid by `mount` itself (`bind,ro,nosuid,nodev`), mount points made by
#              `X-mount.mkdir` (inside a tmpfs mounted by an earlier line, too)
# ops, in order, before the mounts, paths as the task sees them (no path holds a newline):
#   empty DST      an empty file (the mount point of a file)
#   file DST TEXT  a file holding TEXT (mode 0644: the script's umask is 022)
#   copy SRC DST   copy the file or symlink SRC to DST inside the root
#   link TARGET DST  a symlink DST -> TARGET
#   node DST MAJOR MINOR  a character device, mode 0666 (where the host's own could not be copied)
# What always happens: the root itself is remounted read-only last. fds: every fd it gets passes to
# the command unchanged (the command is the supervisor, whose fd contract is in supervisor.sh).
set -eu
umask 022
root="$1"; uid="$2"; gid="$3"; pdeathsig="$4"; cwd="$5"; dirs="$6"; copies="$7"; fstab="$8"; shift 8
nl='
'

mount -t tmpfs -o mode=0755,size=16m,nosuid stasis-root "$root"
cd "$root"
# Lists split on newlines only, never globbed.
set -f; IFS=$nl
mkdir -p -- $dirs
[ -z "$copies" ] || cp -R -P --parents --preserve=mode,timestamps -t "$root" -- $copies
set +f; IFS=" 	$nl"
while [ "$1" != "--" ]; do
  case "$1" in
    empty) [ -e "$root$2" ] || : > "$root$2"; shift 2;;
    file) printf '%s' "$3" > "$root$2"; shift 3;;
    copy) cp -P --preserve=mode,timestamps "$2" "$root$3"; shift 3;;
    link) ln -s "$2" "$root$3"; shift 3;;
    node) mknod -m 0666 "$root$2" c "$3" "$4"; shift 4;;
    *) echo "stasis task root: unknown op $1" >&2; exit 125;;
  esac
done
shift
printf '%s' "$fstab" > proc/.fstab
mount -a -T proc/.fstab

# Into the new root; the host's mount table goes with the old one, put on /tmp and detached there.
pivot_root . tmp
cd /
umount -l /tmp
mount -o remount,bind,ro,nosuid /
cd "$cwd"
set -- --no-new-privs ${pdeathsig:+--pdeathsig "$pdeathsig"} -- "$@"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"
