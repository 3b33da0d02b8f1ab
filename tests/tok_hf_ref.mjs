// tok_hf_ref.mjs - reference token ids for tests/t_tok_hf.sh, from code
// nobody here wrote: @huggingface/transformers' AutoTokenizer on a local
// tokenizer.json folder, or llama3-tokenizer-js.
//   node tests/tok_hf_ref.mjs hf DIR CORPUS      (add_special_tokens: false)
//   node tests/tok_hf_ref.mjs llama3js CORPUS    ({bos: false, eos: false})
// One output line per corpus line ("\n"-separated; the final newline ends
// the last line): the ids separated by one space.
import fs from 'fs';
import path from 'path';

const [mode, a, b] = process.argv.slice(2);
let encode, corpus;
if (mode === 'hf') {
    const { env, AutoTokenizer } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.localModelPath = path.dirname(path.resolve(a));
    const tok = await AutoTokenizer.from_pretrained(path.basename(path.resolve(a)));
    encode = (l) => tok.encode(l, { add_special_tokens: false });
    corpus = b;
} else if (mode === 'llama3js') {
    const m = await import('llama3-tokenizer-js');
    const tok = m.default;
    encode = (l) => tok.encode(l, { bos: false, eos: false });
    corpus = a;
} else {
    console.error('usage: tok_hf_ref.mjs hf DIR CORPUS | llama3js CORPUS');
    process.exit(2);
}
const lines = fs.readFileSync(corpus, 'utf8').split('\n');
lines.pop();
process.stdout.write(lines.map((l) => encode(l).join(' ')).join('\n') + '\n');
