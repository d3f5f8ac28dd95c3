#!/bin/sh
# smtp-accept.sh [BIN]: messages per second accepted over SMTP with 1, 10
# and 100 concurrent clients, our tcpserver + qmail-smtpd + qmail-queued
# (qmail-queue kept resident) beside Postfix's smtpd on the same machine and disk, loaded by Postfix's
# smtp-source. Needs root (Postfix's master), postfix installed, and our
# release binaries in BIN (default target/release of this checkout).
#
# Both sides only accept: qmail-send is not running and the private
# Postfix has no qmgr, so each 250 after DATA means the message is safely on
# disk (qmail-queue fsyncs the files and the directories; Postfix's cleanup
# fsyncs the queue file) and nothing else competes for the CPU. Rounds
# alternate Postfix, ours, Postfix, ours...; ratios are taken per round.
# Env: ROUNDS (3), MESSAGES (2000), SIZE (2000 bytes), CONC ("1 10 100"),
# WORKDIR (/var/tmp: where the private instances live), KEEP (-k: tcpserver
# keeps qmail-smtpd for connection after connection, as Postfix's master
# keeps its smtpd; empty for a program start per connection).
# On an ext4 without a journal, start it at least five minutes after any
# mass deletion (the previous run's cleanup included): until then the inode
# allocator steps over every inode freed in the groups it allocates from
# (ext4's recently_deleted), which costs ours, at two new inodes per
# message, twice what it costs Postfix, at one.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release}
bin=$(cd "$bin" && pwd)
rounds=${ROUNDS:-3} messages=${MESSAGES:-2000} size=${SIZE:-2000}
conc=${CONC:-1 10 100}
work=$(mktemp -d "${WORKDIR:-/var/tmp}/smtp-accept.XXXXXX")
chmod 755 "$work"
# Each instance's directories in block groups of their own (ext4's
# top-directory hint), so that neither side allocates its inodes among the
# ones the other side (or an earlier run) has just freed: on an ext4
# without a journal the allocator steps over every recently freed inode.
chattr +T "$work" 2>/dev/null || true
pfport=$((20000 + $$ % 10000)) qport=$((pfport + 1))
tcppid= qdpid=
cleanup() {
  [ -n "$tcppid" ] && kill "$tcppid" 2>/dev/null
  [ -n "$qdpid" ] && kill "$qdpid" 2>/dev/null
  postfix -c "$work/pf/etc" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

MODE=accept "$here/postfix-instance.sh" "$work/pf" "$pfport" >/dev/null

# Ours: a private QMAILHOME accepting mail for bench.local.
QMAILHOME=$work/qmail "$bin/qmail-install" -p >/dev/null
for f in me rcpthosts locals; do echo bench.local > "$work/qmail/control/$f"; done
# qmail-queued, as qmail-start would run it beside qmail-send.
QMAILHOME=$work/qmail "$bin/qmail-queued" &
qdpid=$!
QMAILHOME=$work/qmail "$bin/tcpserver" ${KEEP--k} -R -H -l bench.local -c 200 -b 100 \
  127.0.0.1 "$qport" "$bin/qmail-smtpd" &
tcppid=$!
sleep 1

# busy: CPU time spent so far by all CPUs, in clock ticks (user, nice,
# system, irq, softirq, steal).
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
hz=$(getconf CLK_TCK)

# rate PORT CONC: messages per second for one smtp-source run, and the CPU
# (all processes, smtp-source included) per message in milliseconds.
rate() {
  c0=$(busy) t0=$(date +%s.%N)
  smtp-source -s "$2" -m "$messages" -l "$size" -f bench@bench.local \
    -t pfbench@bench.local "127.0.0.1:$1"
  t1=$(date +%s.%N) c1=$(busy)
  echo "$messages / ($t1 - $t0)" | bc -l
  echo "($c1 - $c0) * 1000 / $hz / $messages" | bc -l
}

echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# messages=$messages size=$size rounds=$rounds; columns: postfix msg/s, ours msg/s, ours/postfix, postfix CPU ms/msg, ours CPU ms/msg"
for c in $conc; do
  for r in $(seq "$rounds"); do
    set -- $(rate "$pfport" "$c") $(rate "$qport" "$c")
    printf 'conc=%-3s round=%s  %8.1f  %8.1f  %5.2f  %5.2f  %5.2f\n' "$c" "$r" "$1" "$3" \
      "$(echo "$3 / $1" | bc -l)" "$2" "$4"
  done
done
echo "# queued: postfix $(find "$work/pf/queue/hold" -type f | wc -l)," \
  "ours $(find "$work/qmail/queue/mess" -type f | wc -l)"
echo "# end load: $(cut -d' ' -f1-3 /proc/loadavg)"
