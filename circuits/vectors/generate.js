#!/usr/bin/env node
// Test vectors for stablelane-circuits, computed with circomlibjs (the reference JavaScript
// implementation of circomlib's Poseidon over BN254).
//
//   node circuits/vectors/generate.js circuits/vectors/circomlib.json   (from the repo root)
//
// Without an argument the JSON goes to standard output. The output is deterministic (fixed
// inputs, fixed key order, decimal strings), so regenerating it must change nothing; the Rust
// test `tests/integration/circomlib_vectors.rs` checks every value against our implementation.
//
// Every hash is computed with circomlibjs' `buildPoseidon` (the WebAssembly version tools use)
// and cross-checked against its plain `buildPoseidonReference`.

"use strict";

const fs = require("fs");
const path = require("path");
const assert = require("assert");
const { buildPoseidon, buildPoseidonReference } = require("circomlibjs");

// BN254 scalar field modulus r.
const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const DEPTH = 32;

// Two 20-byte addresses (anvil's second account and its first deployed contract).
const OWNER = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
const TOKEN = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
const OTHER = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";

function main() {
  return Promise.all([buildPoseidon(), buildPoseidonReference()]).then(([wasm, reference]) => {
    const F = wasm.F;
    const toBig = (x) => BigInt(F.toString(x));
    const hash = (inputs) => {
      const big = inputs.map((x) => BigInt(x));
      big.forEach((x) => assert(x >= 0n && x < R, `input ${x} is not a field element`));
      const out = toBig(wasm(big));
      const check = BigInt(reference.F.toString(reference(big)));
      assert.strictEqual(out, check, `wasm and reference Poseidon disagree on ${big}`);
      return out;
    };
    const dec = (x) => BigInt(x).toString(10);

    // --- Poseidon of 1..12 inputs.
    const owner = BigInt(OWNER);
    const token = BigInt(TOKEN);
    const big1 = 12345678901234567890123456789012345678901234567890123456789012345678n;
    const big2 = R - 12345678901234567890n;
    const inputSets = [
      [0n], [1n], [R - 1n], [owner],
      [0n, 0n], [0n, 1n], [1n, 2n], [R - 1n, R - 1n], [owner, token], [big1, big2],
      [0n, 0n, 0n], [1n, 2n, 3n], [R - 1n, R - 1n, R - 1n],
      [0n, 0n, 0n, 0n], [1n, 2n, 3n, 4n], [R - 1n, big1, owner, 0n],
      [0n, 0n, 0n, 0n, 0n], [1n, 2n, 3n, 4n, 5n], [R - 1n, R - 1n, R - 1n, R - 1n, R - 1n],
      [owner, token, 10n ** 24n, 7n, big1],
    ];
    for (let n = 6; n <= 12; n++) {
      inputSets.push(Array.from({ length: n }, (_, i) => BigInt(i + 1)));
      inputSets.push(Array.from({ length: n }, () => R - 1n));
    }
    const poseidon = inputSets.map((inputs) => ({
      inputs: inputs.map(dec),
      output: dec(hash(inputs)),
    }));

    // --- Leaves: Poseidon(owner, token, balance, nonce, salt).
    const U128_MAX = (1n << 128n) - 1n;
    const U64_MAX = (1n << 64n) - 1n;
    const leafExamples = [
      { owner: OWNER, token: TOKEN, balance: 1234567890123456789012345n, nonce: 42n, salt: big1 },
      { owner: OTHER, token: TOKEN, balance: U128_MAX, nonce: U64_MAX, salt: R - 1n },
      { owner: OWNER, token: OTHER, balance: 0n, nonce: 0n, salt: 0n },
    ];
    const leafHash = (l) => hash([BigInt(l.owner), BigInt(l.token), l.balance, l.nonce, l.salt]);
    const leaves = leafExamples.map((l) => ({
      owner: l.owner,
      token: l.token,
      balance: dec(l.balance),
      nonce: dec(l.nonce),
      salt: dec(l.salt),
      hash: dec(leafHash(l)),
    }));

    // --- Depth-32 tree.
    const empty = [0n];
    for (let h = 1; h <= DEPTH; h++) empty.push(hash([empty[h - 1], empty[h - 1]]));

    const slotIndices = [0, 1, 2, 5, 1000];
    const treeLeaves = slotIndices.map((index, i) => {
      const l = {
        owner: i % 2 === 0 ? OWNER : OTHER,
        token: TOKEN,
        balance: BigInt(index) * 1000000n + 1n,
        nonce: BigInt(i),
        salt: hash([BigInt(index) + 1n]),
      };
      return { index, leaf: leafHash(l), fields: l };
    });
    // levels[h] maps a node position at height h to its value; absent = empty[h].
    const levels = [new Map(treeLeaves.map((t) => [BigInt(t.index), t.leaf]))];
    const node = (h, pos) => (levels[h].has(pos) ? levels[h].get(pos) : empty[h]);
    for (let h = 0; h < DEPTH; h++) {
      const parents = [...new Set([...levels[h].keys()].map((p) => p >> 1n))].sort((a, b) =>
        a < b ? -1 : a > b ? 1 : 0,
      );
      levels.push(new Map(parents.map((p) => [p, hash([node(h, 2n * p), node(h, 2n * p + 1n)])])));
    }
    const root = node(DEPTH, 0n);
    const pathOf = (index) => {
      const siblings = [];
      for (let h = 0; h < DEPTH; h++) siblings.push(dec(node(h, (BigInt(index) >> BigInt(h)) ^ 1n)));
      return siblings;
    };
    // Check the paths the way a verifier would.
    const rootFrom = (index, leaf, siblings) =>
      siblings.reduce(
        (acc, s, h) => ((BigInt(index) >> BigInt(h)) & 1n ? hash([BigInt(s), acc]) : hash([acc, BigInt(s)])),
        leaf,
      );
    const paths = [5, 1000, 3].map((index) => {
      const leaf = node(0, BigInt(index));
      const siblings = pathOf(index);
      assert.strictEqual(rootFrom(index, leaf, siblings), root);
      return { index, leaf: dec(leaf), siblings };
    });
    const lastSlot = 2 ** 32 - 1;
    assert.strictEqual(rootFrom(lastSlot, 0n, empty.slice(0, DEPTH).map(dec)), empty[DEPTH]);

    return {
      generator: "circuits/vectors/generate.js with circomlibjs 0.1.7 (buildPoseidon, checked against buildPoseidonReference)",
      field_modulus: dec(R),
      poseidon,
      leaves,
      tree: {
        depth: DEPTH,
        empty_subtree_roots: empty.map(dec),
        empty_root: dec(empty[DEPTH]),
        leaves: treeLeaves.map((t) => ({
          index: t.index,
          owner: t.fields.owner,
          token: t.fields.token,
          balance: dec(t.fields.balance),
          nonce: dec(t.fields.nonce),
          salt: dec(t.fields.salt),
          leaf: dec(t.leaf),
        })),
        root: dec(root),
        paths,
      },
    };
  });
}

main().then(
  (vectors) => {
    const text = JSON.stringify(vectors, null, 2) + "\n";
    const out = process.argv[2];
    if (out) {
      fs.writeFileSync(path.resolve(out), text);
    } else {
      process.stdout.write(text);
    }
    // circomlibjs keeps its WebAssembly curve alive; exit explicitly.
    process.exit(0);
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
