#!/usr/bin/env bash
# Brings a fresh Debian machine with Node 20 up to what the project needs, then installs and builds.
# Idempotent: each step is skipped when already done. Used by deploy/up.sh and test/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# pnpm 10 through npm: corepack's signature check fails on some machines.
if ! command -v pnpm >/dev/null 2>&1 || ! pnpm --version 2>/dev/null | grep -q '^10\.'; then
  echo "bootstrap: installing pnpm 10" >&2
  as_root npm install -g pnpm@10 >/dev/null
fi

# Real etcd for the local stack and the end-to-end tests (Debian's etcd-server package).
if ! command -v etcd >/dev/null 2>&1; then
  echo "bootstrap: installing etcd-server" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
fi

# The openssl CLI makes the local stack's throwaway certificates and the tests' (node:crypto
# cannot sign X.509 certificates); curl is a client of the end-to-end TLS tests.
for tool in openssl curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bootstrap: installing $tool" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done

# h2load (Debian's nghttp2-client) loads HTTP/2 listeners in the end-to-end tests and bench/protocols.sh.
if ! command -v h2load >/dev/null 2>&1; then
  echo "bootstrap: installing nghttp2-client" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null
fi

# jemalloc (Debian's libjemalloc2): the launchers preload it into the data plane, which serves
# more HTTP/2 requests per CPU-second on it than on glibc's malloc (packages/data-plane/src/runtime/allocator.ts).
if ! [ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ] && ! [ -e /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 ]; then
  echo "bootstrap: installing libjemalloc2" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjemalloc2 >/dev/null
fi

# The dashboard's end-to-end test drives a real browser: Debian's chromium (playwright-core's own
# browser download does not work everywhere; the test points it at /usr/bin/chromium).
if ! [ -x /usr/bin/chromium ]; then
  echo "bootstrap: installing chromium" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

pnpm install --frozen-lockfile --reporter=silent
pnpm build
