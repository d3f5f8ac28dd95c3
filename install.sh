#!/bin/sh
# Install the suite in place of the C originals.
#
#   ./install.sh [--prefix DIR] [--root DIR] [--qmailhome DIR] [--no-build]
#
# --prefix DIR     where daemontools, ucspi-tcp and djbdns programs go (DIR/bin);
#                  default $PREFIX or /usr/local
# --root DIR       stage everything under DIR (for packaging); nothing outside it is touched
# --qmailhome DIR  qmail's home (its programs go to DIR/bin); default /var/qmail
# --no-build       install what target/release already holds
set -eu
cd "$(dirname "$0")"

prefix=${PREFIX:-/usr/local}
root=
qmailhome=/var/qmail
build=1
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --root) root=$2; shift 2 ;;
    --root=*) root=${1#*=}; shift ;;
    --qmailhome) qmailhome=$2; shift 2 ;;
    --qmailhome=*) qmailhome=${1#*=}; shift ;;
    --no-build) build=0; shift ;;
    *) echo "install.sh: usage: install.sh [--prefix DIR] [--root DIR] [--qmailhome DIR] [--no-build]" >&2; exit 100 ;;
  esac
done

if [ "$build" = 1 ]; then
  QMAILHOME=$qmailhome cargo build --release --workspace
  # The programs that run by the hundred (a supervise per service, a logger
  # per service) and never consult the name service are linked with static
  # glibc: that saves each process the pages of the dynamic loader and
  # libgcc_s, which is what keeps their memory at daemontools' level. Programs
  # that look names up (getpwnam, getgrnam, getservbyname) stay dynamic,
  # because NSS inside a static glibc binary is unreliable.
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release -p supervise -p multilog --target-dir target/static
fi
STATIC="svscan supervise svc svstat svok readproctitle multilog tai64n tai64nlocal"

# Each package's programs are the files in its src/bin; qmail's go to its home.
install_package() {
  pkg=$1 dest=$2
  mkdir -p "$dest"
  for src in "$pkg"/src/bin/*.rs; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .rs)
    bin=target/release/$name
    case " $STATIC " in
      *" $name "*) [ -x "target/static/release/$name" ] && bin=target/static/release/$name ;;
    esac
    [ -x "$bin" ] || { echo "install.sh: fatal: $bin is missing: build first" >&2; exit 111; }
    # Copy then rename, so a running program is never overwritten in place.
    cp "$bin" "$dest/.$name.new"
    chmod 755 "$dest/.$name.new"
    mv -f "$dest/.$name.new" "$dest/$name"
    echo "$dest/$name"
  done
}

for pkg in supervise multilog tcpserver dnscache; do
  install_package "$pkg" "$root$prefix/bin"
done
# qmail: on a live system qmail-install lays out the home with the original
# owners and modes (creating the qmail users when root) and copies its sibling
# programs into bin/; staged, the programs are copied and qmail-install is
# left for the target machine.
if [ -n "$root" ]; then
  install_package qmail "$root$qmailhome/bin"
  echo "install.sh: run QMAILHOME=$qmailhome $qmailhome/bin/qmail-install on the target, then qmail-instcheck"
else
  QMAILHOME=$qmailhome target/release/qmail-install
  QMAILHOME=$qmailhome target/release/qmail-instcheck
fi
