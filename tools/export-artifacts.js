#!/usr/bin/env node
// Copies the deployable contracts' forge output into trimmed, committed artifacts:
//   node tools/export-artifacts.js <forge out dir> <artifacts dir>
// Each artifact keeps what alloy's `sol!` and deployers need: abi, bytecode,
// deployedBytecode (and the compiler version), written with stable key order.
'use strict';
const fs = require('fs');
const path = require('path');

const CONTRACTS = ['Settlement', 'TestStablecoin', 'DisabledVerifier', 'IGroth16Verifier', 'Groth16Verifier', 'CallForwarder'];

const [outDir, artifactsDir] = process.argv.slice(2);
if (!outDir || !artifactsDir) {
  process.stderr.write('usage: export-artifacts.js <forge out dir> <artifacts dir>\n');
  process.exit(2);
}
fs.mkdirSync(artifactsDir, { recursive: true });
for (const name of CONTRACTS) {
  const src = path.join(outDir, `${name}.sol`, `${name}.json`);
  if (!fs.existsSync(src)) {
    process.stderr.write(`missing forge output ${src}\n`);
    process.exit(1);
  }
  const forge = JSON.parse(fs.readFileSync(src, 'utf8'));
  const artifact = {
    contractName: name,
    compiler: forge.metadata ? forge.metadata.compiler.version : undefined,
    abi: forge.abi,
    bytecode: { object: forge.bytecode.object },
    deployedBytecode: { object: forge.deployedBytecode.object },
  };
  fs.writeFileSync(path.join(artifactsDir, `${name}.json`), `${JSON.stringify(artifact, null, 2)}\n`);
}
