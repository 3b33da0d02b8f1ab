// Prints what the independent GGUF reader npm @huggingface/gguf sees in a file,
// as JSON: {version, tensorDataOffset, kv: {key: {type, value}}, tensors: [...]}.
// Usage: node tests/parity/gguf_dump.js FILE.gguf  (run from the repo root;
// the package is installed with `cd tests && npm install`).
const path = require("path");
const { gguf } = require(path.join(__dirname, "..", "node_modules", "@huggingface", "gguf"));

const plain = (v) => (typeof v === "bigint" ? Number(v) : Array.isArray(v) ? v.map(plain) : v);

gguf(path.resolve(process.argv[2]), { allowLocalFile: true, typedMetadata: true }).then(
  (r) => {
    const kv = {};
    for (const [k, e] of Object.entries(r.typedMetadata)) {
      kv[k] = { type: e.type, subType: e.subType, value: plain(e.value) };
    }
    const tensors = r.tensorInfos.map((t) => ({
      name: t.name, n_dims: t.n_dims, shape: t.shape.map(Number), dtype: t.dtype, offset: Number(t.offset),
    }));
    process.stdout.write(JSON.stringify({ version: kv.version ? kv.version.value : null,
      tensorDataOffset: Number(r.tensorDataOffset), kv, tensors }));
  },
  (e) => { process.stderr.write("gguf_dump: " + e.message + "\n"); process.exit(1); }
);
