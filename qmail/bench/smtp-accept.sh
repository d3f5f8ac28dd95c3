#!/bin/sh
# smtp-accept.sh [BIN]: messages per second accepted over SMTP with 1, 10
# and 100 concurrent clients, our tcpserver + qmail-smtpd + qmail-queue
# beside Postfix's smtpd on the same machine and disk, loaded by Postfix's
# smtp-source. Needs root (Postfix's master), postfix installed, and our
# release binaries in BIN (default target/release of this checkout).
#
# Both sides only accept: qmail-send is not running and the private
# Postfix has no qmgr, so each 250 after DATA means the message is safely on
# disk (qmail-queue fsyncs the files and the directories; Postfix's cleanup
# fsyncs the queue file) and nothing else competes for the CPU. Rounds
# alternate Postfix, ours, Postfix, ours...; ratios are taken per round.
# Env: ROUNDS (3), MESSAGES (2000), SIZE (2000 bytes), CONC ("1 10 100"),
# WORKDIR (/var/tmp: where the private instances live).
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
QMAILHOME=$work/qmail "$bin/tcpserver" -R -H -l bench.local -c 200 -b 100 \
  127.0.0.1 "$qport" "$bin/qmail-smtpd" &
tcppid=$!
sleep 1

# rate PORT CONC: messages per second for one smtp-source run.
rate() {
  t0=$(date +%s.%N)
  smtp-source -s "$2" -m "$messages" -l "$size" -f bench@bench.local \
    -t pfbench@bench.local "127.0.0.1:$1"
  t1=$(date +%s.%N)
  echo "$messages / ($t1 - $t0)" | bc -l
}

echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# messages=$messages size=$size rounds=$rounds; columns: postfix msg/s, ours msg/s, ours/postfix"
for c in $conc; do
  for r in $(seq "$rounds"); do
    a=$(rate "$pfport" "$c")
    b=$(rate "$qport" "$c")
    printf 'conc=%-3s round=%s  %8.1f  %8.1f  %5.2f\n' "$c" "$r" "$a" "$b" "$(echo "$b / $a" | bc -l)"
  done
done
echo "# queued: postfix $(find "$work/pf/queue/hold" -type f | wc -l)," \
  "ours $(find "$work/qmail/queue/mess" -type f | wc -l)"
echo "# end load: $(cut -d' ' -f1-3 /proc/loadavg)"
