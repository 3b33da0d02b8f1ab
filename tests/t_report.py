"""tests/t_report.py - `attn report` on a random-init nanoGPT of 6 layers x 8
heads (../shared/ref/nanoGPT/model.py, converted with tools/convert.py) at
128 tokens: the page is under 5 MB, then tests/t_report.js opens it in
headless Chromium (npm puppeteer-core under tests/, /usr/bin/chromium): no
console errors, no network request, hovering a token changes the lines.
Also: bad input (no -o) exits 2 and leaves no file. SKIP when torch,
chromium, node or puppeteer-core is missing."""
import base64
import json
import math
import os
import random
import shutil
import subprocess
import sys

import testlib
from ref_nanogpt import gpt, reference, save_convert
from testlib import ROOT, attn, check, done, scratch, skip

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
L, H, D, P, V = 6, 8, 64, 128, 256
torch, ng = reference("report")
tmp = scratch("t_report_")
torch.manual_seed(1)
model = gpt(ng, block_size=P, vocab_size=V, n_layer=L, n_head=H, n_embd=D, bias=True)
with torch.no_grad():  # sharper than a fresh init, so layers and heads differ after 8-bit rounding
    for blk in model.transformer.h:
        blk.attn.c_attn.weight.mul_(15)
gguf = save_convert(torch, model, tmp, "m")

g = random.Random(3)
ids = ",".join(str(g.randrange(V)) for _ in range(P))
page = os.path.join(tmp, "out", "report.html")
r = attn("report", "-m", gguf, "--ids", ids, "-o", page)
size = os.path.getsize(page) if os.path.exists(page) else -1
check(r.returncode == 0 and 0 < size < 5 * 1024 * 1024, "report_size_6x8_T128",
      "exit %d, %d bytes: %s" % (r.returncode, size, r.stderr.strip()))
print("   report of 6 layers x 8 heads at 128 tokens: %d bytes" % size)
if size > 0:
    html = open(page, encoding="utf-8").read()
    low = html.lower().replace("http://www.w3.org/2000/svg", "")  # the SVG namespace name, not a request
    external = [s for s in ("http://", "https://", "src=", "href=", "@import", "url(") if s in low]
    check(not external, "report_self_contained", "references outside the page: %s" % external)

    # the embedded attention (8-bit triangles) against PyTorch's, recomputed from the modules
    m0, m1 = html.index('id="meta">') + 10, html.index("</script>", html.index('id="meta">'))
    meta = json.loads(html[m0:m1])
    d0 = html.index('id="attn-data">') + len('id="attn-data">')
    data = base64.b64decode("".join(html[d0:html.index("</script>", d0)].split()))
    id_list = [int(x) for x in ids.split(",")]
    with torch.no_grad():
        tr = model.transformer
        x = tr.wte(torch.tensor([id_list])) + tr.wpe(torch.arange(P))
        ref = []
        for blk in tr.h:
            q, k, _ = blk.attn.c_attn(blk.ln_1(x)).split(D, dim=2)
            q = q.view(1, P, H, D // H).transpose(1, 2)
            k = k.view(1, P, H, D // H).transpose(1, 2)
            a = (q @ k.transpose(-2, -1)) / math.sqrt(D // H)
            a = a.masked_fill(torch.tril(torch.ones(P, P)) == 0, float("-inf"))
            ref.append(torch.softmax(a.double(), dim=-1)[0])
            x = blk(x)
    tri = P * (P + 1) // 2
    worst = 0.0
    for l in range(L):
        for h in range(H):
            base = (l * H + h) * tri
            for i in range(P):
                row = data[base + i * (i + 1) // 2: base + i * (i + 1) // 2 + i + 1]
                worst = max(worst, float((torch.tensor(list(row), dtype=torch.float64) / 254 - ref[l][h][i][:i + 1])
                                         .abs().max()))
    check(len(data) == L * H * tri and worst <= 0.5 / 254 + 1e-5 and meta["ids"] == id_list and meta["T"] == P,
          "report_attention_vs_torch", "%d bytes, worst |q/254 - p| = %.6f" % (len(data), worst))

r = attn("report", "-m", gguf, "--ids", "1,2,3")
check(r.returncode == 2 and r.stderr.startswith("attn: "), "report_needs_out", "exit %d" % r.returncode)
bad = os.path.join(tmp, "bad.html")
r = attn("report", "-m", gguf, "--ids", "1,2,%d" % V, "-o", bad)
check(r.returncode == 2 and not os.path.exists(bad) and not [f for f in os.listdir(tmp) if f.startswith("bad")],
      "report_bad_id_no_file", "exit %d, files %s" % (r.returncode, os.listdir(tmp)))

node = shutil.which("node")
mods = os.path.join(ROOT, "tests", "node_modules", "puppeteer-core")
if not os.access(CHROMIUM, os.X_OK):
    skip("report_browser", "%s not found (apt-get install chromium)" % CHROMIUM)
elif not node or not os.path.isdir(mods):
    skip("report_browser", "node or tests/node_modules/puppeteer-core missing (cd tests && npm install)")
elif size > 0:
    shot = os.environ.get("ATTN_REPORT_SHOT", "")
    b = subprocess.run([node, os.path.join(ROOT, "tests", "t_report.js"), page, str(L), str(H), str(P)] +
                       ([shot] if shot else []), capture_output=True, text=True, timeout=120)
    sys.stdout.write(b.stdout)
    if b.returncode != 0 and "FAIL" not in b.stdout:
        check(False, "report_browser", "node exit %d: %s" % (b.returncode, b.stderr.strip()[-300:]))
    testlib.failures += b.stdout.count("FAIL ")
done()
