#!/usr/bin/env bash
# Keyward's main job on its embedded defaults, end to end through the real CLI:
# 1. sealing to public keys: identities, a signed, context-bound envelope,
#    inspected without a key, opened, and a tampered copy refused;
# 2. sealing through the key service: a dev server (temporary embedded store,
#    auto-unsealed), a key, a policy, a device login, seal --kms / open --kms,
#    and the audit log exported and verified offline.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f packages/cli/dist/main.js ] || npm run build >/dev/null

kw() { node packages/cli/bin/keyward.js "$@"; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

echo "== keygen: an X25519 identity, a post-quantum (X-Wing) identity and a signing key"
alice=$(kw keygen -o "$dir/alice.key")
bob=$(kw keygen --pq -o "$dir/bob.key")
signer=$(kw keygen --signing -o "$dir/signer.key")
echo "alice:  $alice"
echo "bob:    ${bob:0:60}…"
echo "signer: $signer"

echo "== seal a 1 MiB file to both, bound to a context, signed"
head -c 1048576 /dev/urandom > "$dir/report.bin"
kw seal -r "$alice" -r "$bob" --context table=orders --context row=42 --sign "$dir/signer.key" -o "$dir/report.kw" "$dir/report.bin"
ls -l "$dir/report.kw" | awk '{print "envelope bytes:", $5}'

echo "== inspect (no key needed; nothing decrypted)"
kw inspect "$dir/report.kw"

echo "== open as bob, requiring the context and alice's signer"
kw open -i "$dir/bob.key" --context table=orders --context row=42 --verify "$signer" -o "$dir/report.out" "$dir/report.kw"
cmp "$dir/report.bin" "$dir/report.out" && echo "bob's copy matches the original"

echo "== a tampered envelope is refused and leaves no output file"
cp "$dir/report.kw" "$dir/bad.kw"
printf '\x01' | dd of="$dir/bad.kw" bs=1 seek=300000 conv=notrunc status=none
if kw open -i "$dir/alice.key" --context table=orders --context row=42 -o "$dir/bad.out" "$dir/bad.kw"; then
  echo "tampering went unnoticed" >&2; exit 1
fi
[ ! -e "$dir/bad.out" ] && echo "no output file was left behind"

echo
echo "== the key service on its embedded defaults: init (SQLite store, master key split 2-of-3), start, unseal"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
export KEYWARD_ADDR="http://127.0.0.1:$port"
kw init --data "$dir/kw" --shares 3 --threshold 2 > "$dir/root.token"
# node itself in the background (not the kw function): $! is then the server's pid, which the trap stops.
node packages/cli/bin/keyward.js server --data "$dir/kw" --listen "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do kw status --json >/dev/null 2>&1 && break; sleep 0.1; done
kw unseal --share "$dir/kw/shares/share-1.txt"     # each custodian, from their own machine
kw unseal --share "$dir/kw/shares/share-3.txt"
kw status

echo "== the initial token of init only enrolls the first administrators: enroll one, then act as them"
kw token create --principal alice --kind person --admin -o "$dir/admin.token" --token-file "$dir/root.token"

echo "== as the administrator: a key, a token for the billing service, a policy that lets it use the key"
export KEYWARD_TOKEN_FILE="$dir/admin.token"
kw keys create billing/orders
kw token create --principal svc-billing -o "$dir/billing.token"
cat > "$dir/policy.json" <<'POLICY'
{ "grants": [ { "principals": ["svc-billing"], "operations": ["datakey", "unwrap"], "keys": ["billing/orders"] } ] }
POLICY
kw policy put billing/billing-service --file "$dir/policy.json"

echo "== as the billing service: register this device, seal through the service, open through it"
export KEYWARD_TOKEN_FILE="$dir/billing.token"
kw login --profile "$dir/profile"
kw seal --kms billing/orders --profile "$dir/profile" --context table=orders -o "$dir/row.kw" "$dir/report.bin"
kw open --kms --profile "$dir/profile" --context table=orders -o "$dir/row.out" "$dir/row.kw"
cmp "$dir/report.bin" "$dir/row.out" && echo "opened through the key service: matches the original"

echo "== the audit trail: export it and verify it offline with the log's public key"
export KEYWARD_TOKEN_FILE="$dir/admin.token"
sleep 1.2   # checkpoints are signed at least every second while there is traffic
kw audit export -o "$dir/audit.jsonl"
kw audit verify --export "$dir/audit.jsonl" --key "$dir/kw/audit-verifier-key.txt"
