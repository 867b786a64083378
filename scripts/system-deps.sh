#!/usr/bin/env bash
# Installs the system programs the tests and benchmarks use, from Debian's packages, when missing:
# redis-server (the tests start their own on a free port), chromium (web chat test), wrk (bench),
# valgrind (bench.ingress_instructions), dovecot-imapd (the mailbox tests start their own on a free
# port with a configuration of their own), postgresql (the conversation store's tests start a
# throw-away cluster of their own).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
command -v wrk >/dev/null || need+=(wrk)
command -v valgrind >/dev/null || need+=(valgrind)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
