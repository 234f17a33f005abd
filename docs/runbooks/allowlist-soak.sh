#!/usr/bin/env bash
# docs/writing-a-policy.md, "From nothing to a device obeying your policy": every command of that
# section, in order, as one script. Run it from the checkout's root after `npm ci`:
#
#   bash docs/runbooks/allowlist-soak.sh [port]     # the chain's port (default 28545); the server takes port + 1
#
# It starts a fresh Hardhat node and a firmware server, and stops both when it ends. It writes
# deployments/localhost.json and ignition/deployments/chain-31337/ in the checkout (as
# `npm run deploy:local` always does), and everything else in a new folder it prints.
set -euo pipefail
set -m # background jobs get their own process group: the cleanup stops their children too

PORT="${1:-28545}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/policy-runbook.XXXXXX")"
echo "== the runbook's files: ${WORK}"
jobs_started=()
cleanup() {
  for pid in ${jobs_started[@]+"${jobs_started[@]}"}; do kill -- "-${pid}" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
# field <path> < file.json: one field of a JSON document (the CLI's --json output, a deployment file)
field() { node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(process.argv[1].split(".").reduce((o,k)=>o[k],JSON.parse(s))))' "$1"; }
# until_up <pid> <url> [json-rpc]: waits (60 s at most) for the server started as <pid> to answer at <url>
until_up() { node -e 'const [pid,u,rpc]=process.argv.slice(1);const ask=()=>fetch(u,rpc?{method:"POST",headers:{"content-type":"application/json"},body:JSON.stringify({jsonrpc:"2.0",id:1,method:"eth_chainId",params:[]})}:{});(async()=>{for(let i=0;i<120;i++){try{process.kill(Number(pid),0)}catch{console.error("it stopped before answering at "+u+": see its log");process.exit(1)}try{await ask();return}catch{await new Promise((r)=>setTimeout(r,500))}}console.error("no answer from "+u);process.exit(1)})()' "$@"; }
# free <port>: stops when something already listens there (the runbook would talk to it instead)
free() { node -e 'const s=require("net").connect(Number(process.argv[1]),"127.0.0.1");s.on("connect",()=>{console.error("port "+process.argv[1]+" is in use: give another port");process.exit(1)});s.on("error",()=>process.exit(0))' "$1"; }

echo "== 1. a fresh local chain, on any port: the CLI, deploy:local and Ignition's localhost network follow OTA_RPC_URL"
export OTA_RPC_URL="http://127.0.0.1:${PORT}"
free "${PORT}" && free "$((PORT + 1))"
npm run chain -- --port "${PORT}" > "${WORK}/chain.log" 2>&1 &
jobs_started+=($!)
until_up "$!" "${OTA_RPC_URL}" json-rpc
npm run deploy:local

echo "== 2. the keys: the node's first account deployed the registries, so it is the administrator."
# Hardhat's well-known development key: never use it on a real chain.
export OTA_PRIVATE_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
ADMIN=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266

echo "== 3. the catalogue: a provider (the administrator signs and authors its releases), a hardware class, a component"
npx ota-ledger provider register "Acme Devices"
npx ota-ledger provider signer add 1 "${ADMIN}"
npx ota-ledger provider author add "${ADMIN}" --provider 1
npx ota-ledger hardware register acme-board-rev-a
npx ota-ledger component register acme.bootloader --provider 1

echo "== 4. a firmware server on an embedded IPFS store, and a release"
export OTA_STORAGE=embedded OTA_SERVER_PORT="$((PORT + 1))" OTA_SERVER_DATA="${WORK}/server" OTA_KEYSTORE="${WORK}/keystore"
export OTA_SERVER_URL="http://127.0.0.1:$((PORT + 1))"
npx ota-ledger server start > "${WORK}/server.log" 2>&1 &
jobs_started+=($!)
until_up "$!" "${OTA_SERVER_URL}/v1/health"
head -c 65536 /dev/urandom > "${WORK}/bootloader-1.0.0.bin"
npx ota-ledger release publish --component acme.bootloader --version 1.0.0 --file "${WORK}/bootloader-1.0.0.bin" \
    --hardware acme-board-rev-a --json > "${WORK}/published.json"
RELEASE="$(field release.releaseId < "${WORK}/published.json")"

echo "== 5. a device: its key, its enrolment, its device.json; the release's content key granted to it"
npx ota-ledger device keygen "${WORK}/device/device.key" --json > "${WORK}/keygen.json"
npx ota-ledger device enrol --id rev-a-0001 --public-key "$(field publicKey < "${WORK}/keygen.json")" \
    --hardware acme-board-rev-a --network plant-1 --region eu-west \
    --write-config "${WORK}/device/device.json" --component acme.bootloader
npx ota-ledger release grant "${RELEASE}" --device rev-a-0001

echo "== 6. the policy: deployed with Ignition, its allowlist set, attached to the component"
REGISTRY="$(field updateRegistry < deployments/localhost.json)"
npx hardhat ignition deploy ignition/modules/AllowlistSoakPolicy.ts --network localhost \
    --parameters "{\"AllowlistSoakPolicy\": {\"registry\": \"${REGISTRY}\", \"soakSeconds\": 86400}}"
POLICY="$(field 'AllowlistSoakPolicy#AllowlistSoakPolicy' < ignition/deployments/chain-31337/deployed_addresses.json)"
printf 'rev-a-0001\nlab-bench-7\n' > "${WORK}/allowed.txt"
npx ota-ledger policy allowlist --devices "${WORK}/allowed.txt" --out "${WORK}/allowed.json"
npx ota-ledger policy send "${POLICY}" "setAllowlist(bytes32)" "$(field root < "${WORK}/allowed.json")"
npx ota-ledger policy call "${POLICY}" "allowlistRoot() returns (bytes32)"
npx ota-ledger policy attach "${POLICY}" --component acme.bootloader

echo "== 7. the device is refused: it holds no proof yet (NO_EVIDENCE)"
npx ota-ledger policy check --release "${RELEASE}" --device-config "${WORK}/device/device.json"

echo "== 8. its proof handed to it (a device without a tracker; with one: --tracker <url> instead of --device-config)"
npx ota-ledger policy evidence --release "${RELEASE}" --policy "${POLICY}" --file "${WORK}/allowed.json" \
    --device-config "${WORK}/device/device.json"

echo "== 9. still refused while the release soaks (SOAKING), by the device itself too"
npx ota-ledger policy check --release "${RELEASE}" --device-config "${WORK}/device/device.json"
if npx ota-ledger device install --device-config "${WORK}/device/device.json" --release "${RELEASE}"; then
  echo "the device installed a release its policy refuses" >&2
  exit 1
fi

echo "== 10. a day later (a development chain's clock moved on), the device takes the release"
npx hardhat advance-time 86400 --network localhost
npx ota-ledger policy check --release "${RELEASE}" --device-config "${WORK}/device/device.json"
npx ota-ledger device install --device-config "${WORK}/device/device.json" --release "${RELEASE}"
echo "== done"
