# The root of a sandboxed task, built from nothing (runner/workload/task-root.ts builds the argv).
#
# Runs as root as the first program of fresh mount, PID and IPC namespaces (`unshare --mount --pid
# --ipc --fork --propagation private`), so nothing it mounts is seen outside. It mounts a fresh tmpfs over ROOT,
# puts in it only what the ops name, pivots into it and detaches the host's whole mount table, so no
# mount of the host (other software's network namespaces, FUSE, container overlays, the runner's
# dirs) is in the task's namespace — CRIU dumps and restores it whatever the host holds. Then it
# becomes the task's user and execs the command, which keeps its PID (PID 1 of the namespace).
#
# Arguments: `ROOT UID GID PDEATHSIG CWD TMPFS_OPTS op… -- command…`
#   ROOT       an existing dir to mount the new root's tmpfs over (source `stasis-root`)
#   UID GID    the user to become; PDEATHSIG the signal the command gets when its parent dies (empty:
#              none; a change of uid clears the one `unshare --kill-child` set); CWD where it starts
#   TMPFS_OPTS options of the task's own /tmp and /dev/shm (source `stasis-tmp`)
# ops, in order, paths as the task sees them (the same as on the host):
#   ro SRC DST     bind SRC read-only (nosuid, nodev) at DST; CRIU sees it as an external mount
#   rw SRC DST     bind SRC read-write (nosuid, nodev) at DST (a dir the operator shares with tasks)
#   copy SRC DST   copy the file or symlink SRC to DST inside the root (read-only once built)
#   copies LIST    copy the files or symlinks of LIST (one path a line) to their own paths inside
#                  the root, in one `cp`
#   link TARGET DST  a symlink DST -> TARGET
#   file DST TEXT  a file holding TEXT (mode 0644: the script's umask is 022)
#   hide DST       an empty tmpfs over a dir inside a bound dir (source `stasis-hidden`, mode 0555
#                  root's: the task's user cannot write there; a bind below it gets its mount point
#                  made there); a file there is covered with the root's own /dev/null
# What is always there: /proc (of the task's PID namespace), /dev with null, zero, full, random,
# urandom and tty nodes and the fd/stdin/stdout/stderr links, /dev/shm and /tmp (own tmpfs each).
# The root itself is remounted read-only last. fds: every fd it gets passes to the command unchanged
# (the command is the supervisor, whose fd contract is in supervisor.sh).
set -eu
umask 022
root="$1"; uid="$2"; gid="$3"; pdeathsig="$4"; cwd="$5"; tmpfs_opts="$6"; shift 6

mount -t tmpfs -o mode=0755,size=16m,nosuid stasis-root "$root"
cd "$root"
mkdir -p proc dev/shm tmp
mount -t proc -o nosuid,nodev,noexec proc proc
mknod -m 0666 dev/null c 1 3
mknod -m 0666 dev/zero c 1 5
mknod -m 0666 dev/full c 1 7
mknod -m 0666 dev/random c 1 8
mknod -m 0666 dev/urandom c 1 9
mknod -m 0666 dev/tty c 5 0
ln -s /proc/self/fd dev/fd
ln -s /proc/self/fd/0 dev/stdin
ln -s /proc/self/fd/1 dev/stdout
ln -s /proc/self/fd/2 dev/stderr
mount -t tmpfs -o "mode=1777,nosuid,nodev,$tmpfs_opts" stasis-tmp tmp
mount -t tmpfs -o "mode=1777,nosuid,nodev,$tmpfs_opts" stasis-tmp dev/shm

# The mount point of SRC at ROOT/DST: a dir for a dir, an empty file for anything else.
target() {
  if [ -d "$1" ]; then mkdir -p "$root$2"; else mkdir -p "$root$(dirname "$2")"; [ -e "$root$2" ] || : > "$root$2"; fi
}
while [ "$1" != "--" ]; do
  case "$1" in
    ro) target "$2" "$3"; mount --bind "$2" "$root$3"; mount -o remount,bind,ro,nosuid,nodev "$root$3"; shift 3;;
    rw) target "$2" "$3"; mount --bind "$2" "$root$3"; mount -o remount,bind,nosuid,nodev "$root$3"; shift 3;;
    copy) mkdir -p "$root$(dirname "$3")"; cp -P --preserve=mode,timestamps "$2" "$root$3"; shift 3;;
    copies) printf '%s\n' "$2" | xargs -d '\n' cp -P --parents --preserve=mode,timestamps -t "$root"; shift 2;;
    link) mkdir -p "$root$(dirname "$3")"; ln -s "$2" "$root$3"; shift 3;;
    file) [ -d "$root$(dirname "$2")" ] || mkdir -p "$root$(dirname "$2")"; printf '%s' "$3" > "$root$2"; shift 3;;
    hide)
      if [ -d "$root$2" ]; then mount -t tmpfs -o size=16k,mode=0555,nosuid,nodev stasis-hidden "$root$2"
      elif [ -e "$root$2" ]; then mount --bind "$root/dev/null" "$root$2"; fi
      shift 2;;
    *) echo "stasis task root: unknown op $1" >&2; exit 125;;
  esac
done
shift

# Into the new root; the host's mount table goes with the old one.
mkdir .old
pivot_root . .old
cd /
umount -l /.old
rmdir /.old
mount -o remount,bind,ro,nosuid /
cd "$cwd"
set -- --no-new-privs ${pdeathsig:+--pdeathsig "$pdeathsig"} -- "$@"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"
