#!/usr/bin/env bash
# Keyward's main job on its embedded defaults, end to end through the real CLI:
# make an identity, seal a file to it with an encryption context and a
# signature, inspect the envelope without opening it, open it, compare.
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
