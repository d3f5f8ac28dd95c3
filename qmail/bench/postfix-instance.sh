#!/bin/sh
# postfix-instance.sh DIR PORT: lay out and start a private Postfix instance
# for the benchmarks (never the system-wide one): configuration, queue and
# log under DIR, smtpd on 127.0.0.1:PORT with no client name lookups, local
# delivery for bench.local into the Maildir of user pfbench (created here
# when missing; home DIR/home). MODE=accept puts every accepted message on
# hold, so that, like qmail-smtpd with qmail-send stopped, accepted mail
# stays in the queue (qmgr keeps running: without it cleanup waits a second
# per message for it). Stop it with: postfix -c DIR/etc stop
set -eu
dir=$1 port=$2 mode=${MODE:-deliver}
mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/home"
id pfbench >/dev/null 2>&1 || useradd -M -d "$dir/home" -s /usr/sbin/nologin pfbench
[ "$(getent passwd pfbench | cut -d: -f6)" = "$dir/home" ] || usermod -d "$dir/home" pfbench
chown pfbench "$dir/home"
chown postfix "$dir/data"
cp /etc/postfix/dynamicmaps.cf "$dir/etc/"
cat > "$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
myhostname = bench.local
mydomain = bench.local
myorigin = bench.local
mydestination = bench.local
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
home_mailbox = Maildir/
biff = no
smtpd_peername_lookup = no
smtpd_banner = \$myhostname ESMTP
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
default_process_limit = 200
message_size_limit = 10240000
smtp_dns_support_level = disabled
disable_dns_lookups = yes
CF
[ "$mode" = accept ] &&
  echo "smtpd_data_restrictions = check_client_access static:HOLD" >> "$dir/etc/main.cf"
{
  echo "127.0.0.1:$port inet n - n - - smtpd"
  echo "pickup unix n - n 60 1 pickup"
  echo "cleanup unix n - n - 0 cleanup"
  echo "qmgr unix n - n 300 1 qmgr"
  echo "rewrite unix - - n - - trivial-rewrite"
  echo "bounce unix - - n - 0 bounce"
  echo "defer unix - - n - 0 bounce"
  echo "trace unix - - n - 0 bounce"
  echo "verify unix - - n - 1 verify"
  echo "flush unix n - n 1000? 0 flush"
  echo "proxymap unix - - n - - proxymap"
  echo "smtp unix - - n - - smtp"
  echo "showq unix n - n - - showq"
  echo "error unix - - n - - error"
  echo "retry unix - - n - - error"
  echo "discard unix - - n - - discard"
  echo "local unix - n n - - local"
  echo "anvil unix - - n - 1 anvil"
  echo "scache unix - - n - 1 scache"
  echo "postlog unix-dgram n - n - 1 postlogd"
} > "$dir/etc/master.cf"
# postdrop and sendmail are setgid: they only accept a configuration
# directory the default one lists.
sed -i '/^alternate_config_directories/d' /etc/postfix/main.cf
echo "alternate_config_directories = $dir/etc" >> /etc/postfix/main.cf
postfix -c "$dir/etc" set-permissions >/dev/null 2>&1 || true
script -qec "postfix -c $dir/etc check" /dev/null
script -qec "postfix -c $dir/etc start" /dev/null
