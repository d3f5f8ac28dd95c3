#!/bin/sh
# inject-maildir.sh [BIN]: messages per second from injection to Maildir,
# ours (qmail-inject -> qmail-queue -> qmail-send -> qmail-lspawn ->
# qmail-local -> ./Maildir/) beside Postfix (sendmail -> postdrop -> pickup
# -> cleanup -> qmgr -> local -> Maildir/) on the same disk. Needs root,
# postfix installed and our release binaries in BIN (default target/release).
#
# Each round injects MESSAGES messages as fast as one injector loop can,
# with delivery running, and times from the first injection until the last
# message file is in the Maildir's new/. Both sides fsync: Postfix its queue
# file and the delivered file, ours the queue files, the queue directories
# and the delivered file. Env: ROUNDS (2), MESSAGES (10000), INJECTORS (4),
# WORKDIR (/var/tmp: where the private instances live).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/release}
bin=$(cd "$bin" && pwd)
rounds=${ROUNDS:-2} messages=${MESSAGES:-10000} injectors=${INJECTORS:-4}
work=$(mktemp -d "${WORKDIR:-/var/tmp}/inject-maildir.XXXXXX")
chmod 755 "$work"
# Each instance's directories in block groups of their own (ext4's
# top-directory hint), so that neither side allocates its inodes among the
# ones the other side (or an earlier run) has just freed: on an ext4
# without a journal the allocator steps over every recently freed inode.
chattr +T "$work" 2>/dev/null || true
pfport=$((20000 + $$ % 10000))
sendpid=
cleanup() {
  [ -n "$sendpid" ] && kill "$sendpid" 2>/dev/null
  postfix -c "$work/pf/etc" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$here/postfix-instance.sh" "$work/pf" "$pfport" >/dev/null
pfnew=$work/pf/home/Maildir/new
mkdir -p "$pfnew" "$work/pf/home/Maildir/cur" "$work/pf/home/Maildir/tmp"
chown -R pfbench "$work/pf/home/Maildir"

# Ours: a private QMAILHOME delivering every local address to one Maildir,
# run by qmail-start as the local stack does.
QMAILHOME=$work/qmail "$bin/qmail-install" -p >/dev/null
for f in me locals; do echo bench.local > "$work/qmail/control/$f"; done
mkdir -p "$work/qhome"
"$bin/maildirmake" "$work/qhome/Maildir"
echo ./Maildir/ > "$work/qhome/.qmail-default"
printf '+:%s:%s:%s:%s:-::\n.\n' "$(id -un)" "$(id -u)" "$(id -g)" "$work/qhome" \
  > "$work/qmail/users/assign"
QMAILHOME=$work/qmail "$bin/qmail-newu"
qnew=$work/qhome/Maildir/new
(cd "$work/qmail" && exec env QMAILHOME="$work/qmail" PATH="$bin:$PATH" \
  "$bin/qmail-start" ./Maildir/ cat) >"$work/send.log" 2>&1 &
sendpid=$!

# inject CMD...: MESSAGES messages through CMD, INJECTORS loops at once.
inject() {
  per=$((messages / injectors))
  for j in $(seq "$injectors"); do
    (for i in $(seq "$per"); do
      printf 'To: rcpt@bench.local\nSubject: bench %s %s\n\nbody line\n' "$j" "$i" | "$@"
    done) &
  done
  wait
}

# rate NEWDIR CMD...: messages per second until NEWDIR holds them all.
rate() {
  dir=$1; shift
  before=$(ls "$dir" | wc -l)
  t0=$(date +%s.%N)
  inject "$@"
  want=$((before + messages / injectors * injectors))
  n=0
  while [ "$(ls "$dir" | wc -l)" -lt "$want" ] && [ $n -lt 6000 ]; do
    sleep 0.1; n=$((n + 1))
  done
  t1=$(date +%s.%N)
  echo "$((want - before)) / ($t1 - $t0)" | bc -l
}

echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# messages=$messages injectors=$injectors rounds=$rounds; columns: postfix msg/s, ours msg/s, ours/postfix"
for r in $(seq "$rounds"); do
  a=$(rate "$pfnew" sendmail -C "$work/pf/etc" -i pfbench@bench.local)
  b=$(rate "$qnew" env QMAILHOME="$work/qmail" "$bin/qmail-inject" rcpt@bench.local)
  printf 'round=%s  %8.1f  %8.1f  %5.2f\n' "$r" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
echo "# end load: $(cut -d' ' -f1-3 /proc/loadavg)"
