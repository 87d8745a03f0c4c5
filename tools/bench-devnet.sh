#!/usr/bin/env bash
# Settlement-cost and proving-impact benchmarks against a running devnet (docs/benchmarks.md).
#
#   tools/bench-devnet.sh gas   [devnet.json]   # commit gas per transfer (bench --settle)
#   tools/bench-devnet.sh prove [devnet.json]   # latency at 2,000/s with and without proofs
#
# Start the devnet first, from the repository root, with a long batch age so a run's
# transfers stay in as few batches as the size limits allow:
#
#   make tools && cargo build --release -p stablelane-cli -p stablelane-devnet
#   STABLELANE_BATCH_MAX_AGE_MS=600000 target/release/stablelane-devnet --node target/release/stablelane
#
# (`prove` wants the devnet's default 5 s batch age: drop the variable.) The script deposits
# 10,000 USDC on-chain from the 6th dev wallet, and the bench funds its accounts from it with
# signed transfers (`--fund-from`). Each run uses fresh accounts (a seed from the clock).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:?usage: tools/bench-devnet.sh gas|prove [devnet.json]}"
desc="${2:-anvil/devnet.json}"
[ -f "$desc" ] || { echo "no $desc: is the devnet running?" >&2; exit 1; }
field() { python3 -c "import json,sys; d=json.load(open('$desc')); print(eval(sys.argv[1]))" "$1"; }
l2=$(field "d['l2RpcUrl']")
node=$(field "d['nodeRpcUrl']")
admin=$(field "d['adminRpcUrl']")
settlement=$(field "d['settlement']")
usdc=$(field "[t['address'] for t in d['tokens'] if t['symbol']=='USDC'][0]")
key=$(field "d['devAccounts'][5]['privateKey']")
address=$(field "d['devAccounts'][5]['address']")
STABLELANE_ADMIN_TOKEN=$(field "d['adminToken']")
export STABLELANE_ADMIN_TOKEN
cast=node_modules/.bin/cast
sl=target/release/stablelane
[ -x "$sl" ] || { echo "build it first: cargo build --release -p stablelane-cli" >&2; exit 1; }
seed="run-$(date +%s)"

echo "depositing 10,000 USDC on-chain from $address…"
$cast send "$usdc" "approve(address,uint256)" "$settlement" 10000000000 \
    --private-key "$key" --rpc-url "$l2" >/dev/null
$cast send "$settlement" "deposit(address,uint256,address)" "$usdc" 10000000000 "$address" \
    --private-key "$key" --rpc-url "$l2" >/dev/null
for _ in $(seq 1 60); do
    balance=$($sl wallet balance --token USDC --rpc "$node" --private-key "$key" 2>/dev/null || true)
    case "$balance" in 0\ USDC*|"") sleep 1 ;; *) break ;; esac
done
echo "on the node: $balance"

bench=("$sl" bench --rpc "$node" --admin "$admin" --token USDC --fund-from "$key")
case "$mode" in
gas)
    for run in "1000 1000" "1000 10000" "10000 10000" "100 10000"; do
        set -- $run
        echo "== $2 transfers over $1 accounts"
        "${bench[@]}" --settle --l2-rpc "$l2" --concurrency 32 \
            --accounts "$1" --transfers "$2" --seed "$seed-$1-$2" 2>/dev/null | grep settlement
    done
    ;;
prove)
    attest() {
        while true; do
            "$sl" wallet attest --token USDC --threshold 1 --rpc "$node" --private-key "$key" \
                --out /dev/null >/dev/null 2>&1 && echo ok
        done
    }
    for round in 1 2; do
        # Round 1's funding puts the wallet into a committed batch before proofs start.
        echo "== round $round: no proofs"
        "${bench[@]}" --accounts 1000 --transfers 30000 --concurrency 64 --rate 2000 \
            --seed "$seed-a$round" 2>/dev/null | grep -E "throughput|latency"
        proofs=$(mktemp)
        attest >"$proofs" &
        loop=$!
        sleep 2
        echo "== round $round: proofs back to back"
        "${bench[@]}" --accounts 1000 --transfers 30000 --concurrency 64 --rate 2000 \
            --seed "$seed-b$round" 2>/dev/null | grep -E "throughput|latency"
        kill "$loop"
        wait "$loop" 2>/dev/null || true
        echo "proofs made meanwhile: $(wc -l <"$proofs")"
        rm -f "$proofs"
    done
    ;;
*)
    echo "unknown mode $mode (gas or prove)" >&2
    exit 2
    ;;
esac
