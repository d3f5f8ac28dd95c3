#!/bin/sh
# queue-drain.sh [BIN]: queue processing, ours beside Postfix on the same
# disk. MESSAGES (default 100000) messages are queued over SMTP with
# delivery stopped (ours: qmail-send not running; Postfix: every message on
# hold), then delivery starts (ours: qmail-start; Postfix: postsuper -H ALL)
# and the time until the last message is in the Maildir's new/ is taken.
# Needs root, postfix installed and our release binaries in BIN (default
# target/release). Env: MESSAGES, SIZE (2000), WORKDIR (/var/tmp: where the
# private instances live).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release}
bin=$(cd "$bin" && pwd)
messages=${MESSAGES:-100000} size=${SIZE:-2000}
work=$(mktemp -d "${WORKDIR:-/var/tmp}/queue-drain.XXXXXX")
chmod 755 "$work"
# Each instance's directories in block groups of their own (ext4's
# top-directory hint), so that neither side allocates its inodes among the
# ones the other side (or an earlier run) has just freed: on an ext4
# without a journal the allocator steps over every recently freed inode.
chattr +T "$work" 2>/dev/null || true
pfport=$((20000 + $$ % 10000)) qport=$((pfport + 1))
tcppid= sendpid=
cleanup() {
  [ -n "$tcppid" ] && kill "$tcppid" 2>/dev/null
  [ -n "$sendpid" ] && kill "$sendpid" 2>/dev/null
  postfix -c "$work/pf/etc" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

MODE=accept "$here/postfix-instance.sh" "$work/pf" "$pfport" >/dev/null
mkdir -p "$work/pf/home/Maildir/new" "$work/pf/home/Maildir/cur" "$work/pf/home/Maildir/tmp"
chown -R pfbench "$work/pf/home/Maildir"

QMAILHOME=$work/qmail "$bin/qmail-install" -p >/dev/null
for f in me rcpthosts locals; do echo bench.local > "$work/qmail/control/$f"; done
mkdir -p "$work/qhome"
"$bin/maildirmake" "$work/qhome/Maildir"
echo ./Maildir/ > "$work/qhome/.qmail-default"
printf '+:%s:%s:%s:%s:-::\n.\n' "$(id -un)" "$(id -u)" "$(id -g)" "$work/qhome" \
  > "$work/qmail/users/assign"
QMAILHOME=$work/qmail "$bin/qmail-newu"
QMAILHOME=$work/qmail "$bin/tcpserver" -R -H -l bench.local -c 200 -b 100 \
  127.0.0.1 "$qport" "$bin/qmail-smtpd" &
tcppid=$!
sleep 1

echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg); messages=$messages size=$size"
for port in "$pfport" "$qport"; do
  smtp-source -s 20 -m "$messages" -l "$size" -f bench@bench.local \
    -t pfbench@bench.local "127.0.0.1:$port"
done
echo "# queued: postfix $(find "$work/pf/queue/hold" -type f | wc -l)," \
  "ours $(ls "$work/qmail/queue/todo" | wc -l)"

# drain NEWDIR: seconds until NEWDIR holds MESSAGES files.
drain() {
  t0=$(date +%s.%N)
  n=0
  while [ "$(ls "$1" | wc -l)" -lt "$messages" ] && [ $n -lt 36000 ]; do
    sleep 0.1; n=$((n + 1))
  done
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

# Released mail goes to the deferred queue; a flush sends it on at once.
# Each side starts with nothing left to write back.
sync
postsuper -c "$work/pf/etc" -H ALL >/dev/null 2>&1
postqueue -c "$work/pf/etc" -f
a=$(drain "$work/pf/home/Maildir/new")
sync
(cd "$work/qmail" && exec env QMAILHOME="$work/qmail" PATH="$bin:$PATH" \
  "$bin/qmail-start" ./Maildir/ cat) >"$work/send.log" 2>&1 &
sendpid=$!
b=$(drain "$work/qhome/Maildir/new")
printf 'drain seconds: postfix %.1f, ours %.1f; msg/s postfix %.1f, ours %.1f; ours/postfix %.2f\n' \
  "$a" "$b" "$(echo "$messages / $a" | bc -l)" "$(echo "$messages / $b" | bc -l)" "$(echo "$a / $b" | bc -l)"
echo "# end load: $(cut -d' ' -f1-3 /proc/loadavg)"
