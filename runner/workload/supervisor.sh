# PID 1 of a task's PID namespace (runner/workload/namespace.ts runs it as `bash -c <this> command args…`).
#
# fd contract, as the runtime spawns it:
#   0       anything (the runtime passes /dev/null); reopened here as /dev/null of the task's own
#           namespace, so nothing of the host's /dev stays open in the dumped tree
#   1, 2    the task's stdout and stderr (sockets to the runner)
#   3       the task's ipc socket (newline-delimited JSON, framed by the runner)
#   4       the status socket: the supervisor writes one line `exit N` when the task ends (N as a
#           shell reports it: 128+S for death by signal S); the task never gets it
#   5+      closed before the task starts (nothing the spawner leaked reaches the task or a dump)
# A checkpoint dumps the supervisor with the task; on restore CRIU hands fresh sockets for 1–4
# (matched by inode), so the exit of a restored task is reported as that of a fresh one, although
# `criu restore` itself exits 0 whatever the task did. It exits with the task's status.
for f in /proc/$$/fd/*; do
  n=${f##*/}
  case $n in 0|1|2|3|4) ;; *) [ -e "$f" ] && eval "exec $n>&-";; esac
done
exec </dev/null
"$0" "$@" 4>&-
s=$?
echo "exit $s" >&4
exit $s
