#!/usr/bin/env bash
# Installs the system programs the tests use, only when they are missing:
#   age (age interop tests), chromium (browser tests), softhsm2 and opensc
#   (HSM tests), swtpm, swtpm-tools, tpm2-tools and openssl (attestation tests), ccache
#   (native addon builds, see scripts/test.sh), and a PostgreSQL server
#   on 127.0.0.1:5432 with trust authentication (store tests) when nothing
#   answers there.
# Needs root (or sudo) and Debian's package repositories.
set -euo pipefail

need=()
command -v age >/dev/null 2>&1 || need+=(age)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
# SoftHSM2 (a real PKCS#11 token) and OpenSC's pkcs11-tool (an independent look at its keys): HSM tests.
[ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
# A software TPM and its tools (TPM 2.0 quote and credential-activation tests in packages/attest),
# and openssl (test certificates for the attestation verifiers).
command -v swtpm >/dev/null 2>&1 || need+=(swtpm)
command -v swtpm_setup >/dev/null 2>&1 && command -v swtpm_localca >/dev/null 2>&1 || need+=(swtpm-tools)
command -v tpm2_quote >/dev/null 2>&1 && command -v tpm2_checkquote >/dev/null 2>&1 || need+=(tpm2-tools)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# ccache: where better-sqlite3's prebuilt binary cannot be downloaded, npm ci compiles SQLite
# (~90 s); through ccache (scripts/test.sh) a later run on the same machine reuses the objects.
command -v ccache >/dev/null 2>&1 || need+=(ccache)

if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# PostgreSQL for packages/server/test/store/postgres.test.ts: only when no server answers on 127.0.0.1:5432.
# Each test run makes (and drops) its own database as the `postgres` user over trust authentication.
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "install-test-deps: nothing answers on 127.0.0.1:5432; installing and starting PostgreSQL"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  ver="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  [ -d "/etc/postgresql/$ver/main" ] || $SUDO pg_createcluster "$ver" main >/dev/null
  conf="/etc/postgresql/$ver/main"
  # Loopback only, trust authentication (a test server: never expose it).
  $SUDO sed -i "s/^#\?listen_addresses *=.*/listen_addresses = '127.0.0.1'/" "$conf/postgresql.conf"
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' | $SUDO tee "$conf/pg_hba.conf" >/dev/null
  $SUDO pg_ctlcluster "$ver" main start || $SUDO pg_ctlcluster "$ver" main reload
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 0.2; done
fi
(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null || { echo "install-test-deps: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }

echo "install-test-deps: age $(age --version), $(/usr/bin/chromium --version 2>/dev/null | head -1), PostgreSQL on 127.0.0.1:5432"

# Brokers the integration tests use for real (packages/integrations; PostgreSQL is above): NATS with
# JetStream (4222) and RabbitMQ (5672, guest/guest). This machine kind starts them before a session;
# where nothing listens on the port, install the Debian package and start it.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
svc_install() {
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
wait_port() { for _ in $(seq 60); do listening "$1" && return 0; sleep 1; done; echo "install-test-deps: nothing listens on $1" >&2; return 1; }
if ! listening 4222; then
  echo "install-test-deps: starting NATS (JetStream)"
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || svc_install nats-server
  $SUDO mkdir -p /var/lib/nats-server
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222
fi
if ! listening 5672; then
  echo "install-test-deps: starting RabbitMQ"
  command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || svc_install rabbitmq-server
  $SUDO rabbitmq-server -detached || true
  wait_port 5672
fi
