// tok_hf_ref.mjs - reference token ids for tests/tok/t_tok_hf.sh, from code
// nobody here wrote: @huggingface/transformers' AutoTokenizer on a local
// tokenizer.json folder, or llama3-tokenizer-js.
//   node tests/tok/tok_hf_ref.mjs hf CORPUS DIR OUT [DIR OUT ...]  (add_special_tokens: false)
//   node tests/tok/tok_hf_ref.mjs llama3js CORPUS OUT               ({bos: false, eos: false})
// OUT gets one line per corpus line ("\n"-separated; the final newline ends
// the last line): the ids separated by one space.
import fs from 'fs';
import path from 'path';

const [mode, corpus, ...pairs] = process.argv.slice(2);
const lines = fs.readFileSync(corpus, 'utf8').split('\n');
lines.pop();
const write = (out, encode) => fs.writeFileSync(out, lines.map((l) => encode(l).join(' ')).join('\n') + '\n');
if (mode === 'hf') {
    const { env, AutoTokenizer } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    for (let i = 0; i + 1 < pairs.length; i += 2) {
        const dir = path.resolve(pairs[i]);
        env.localModelPath = path.dirname(dir);
        const tok = await AutoTokenizer.from_pretrained(path.basename(dir));
        write(pairs[i + 1], (l) => tok.encode(l, { add_special_tokens: false }));
    }
} else if (mode === 'llama3js') {
    const m = await import('llama3-tokenizer-js');
    write(pairs[0], (l) => m.default.encode(l, { bos: false, eos: false }));
} else {
    console.error('usage: tok_hf_ref.mjs hf CORPUS DIR OUT... | llama3js CORPUS OUT');
    process.exit(2);
}
