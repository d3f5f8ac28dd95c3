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

# Static glibc: a supervise per service and a process per connection each
# save the pages of the dynamic loader and libgcc_s (daemontools' own binaries
# are that small); NSS lookups (getpwnam) still load their modules at run time.
RUSTFLAGS=${RUSTFLAGS:--C target-feature=+crt-static}
export RUSTFLAGS
if [ "$build" = 1 ]; then
  QMAILHOME=$qmailhome cargo build --release --workspace
fi

# Each package's programs are the files in its src/bin; qmail's go to its home.
install_package() {
  pkg=$1 dest=$2
  mkdir -p "$dest"
  for src in "$pkg"/src/bin/*.rs; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .rs)
    bin=target/release/$name
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
install_package qmail "$root$qmailhome/bin"
