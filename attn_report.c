// attn_report.c - section "writers": the offline HTML report of one prompt.
// One self-contained page: our own CSS and JavaScript inline, the data as a
// JSON block (tokens, head scores, next-token candidates) and a base64 block
// of the attention quantised to 8 bits (lower triangles only; 0..254 is
// round(254 p), 255 marks a non-finite value, drawn magenta). The page
// draws: a token view (hover a token: where each head of a layer looks, like
// BertViz's head view), a layer x head grid of thumbnails coloured by head
// type, the head score table (sortable), the top-k table per position.
// No request leaves the page: no external script, font, image or icon.
#include "attn.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

uint8_t attn_quant8(float p) {
    if (!isfinite(p)) return ATTN_Q8_NONFINITE;
    float v = p * 254.0f + 0.5f;
    return v <= 0 ? 0 : v >= 254 ? 254 : (uint8_t)v;
}

static const char CSS[] =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;"
    "padding:0 16px 40px;color:#222;background:#fff}\n"
    "h1{font-size:22px;margin:16px 0 4px}h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #ddd}\n"
    ".note{color:#666;font-size:12px;margin:2px 0 8px}\n"
    ".controls{margin:6px 0;display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center}\n"
    ".hb{display:inline-flex;align-items:center;gap:3px;padding:1px 6px;border-radius:3px;color:#fff;"
    "font-size:12px;cursor:pointer;user-select:none}\n"
    ".hb input{margin:0}\n"
    "#view-wrap{overflow:auto;max-height:80vh;border:1px solid #eee}\n"
    "#view text{font:12px ui-monospace,Menlo,Consolas,monospace;cursor:default}\n"
    "#view text.on{font-weight:bold;fill:#c00}\n"
    "#grid{display:grid;gap:6px;align-items:start}\n"
    "#grid figure{margin:0;text-align:center;font-size:11px;cursor:pointer}\n"
    "#grid canvas{width:84px;height:84px;image-rendering:pixelated;border:3px solid #ccc;display:block;margin:auto}\n"
    "#grid .lab{font-size:11px;font-weight:bold;align-self:center}\n"
    ".legend span{display:inline-block;padding:0 6px;margin:0 4px 4px 0;color:#fff;border-radius:3px;font-size:12px}\n"
    "table{border-collapse:collapse;font-size:12px}\n"
    "th,td{padding:2px 6px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}\n"
    "th{cursor:pointer;background:#f6f6f6;position:sticky;top:0}\n"
    "td.t{text-align:left;font-family:ui-monospace,Menlo,Consolas,monospace}\n"
    "td small{color:#888}\n"
    ".scroll{max-height:70vh;overflow:auto;border:1px solid #eee}\n";

static const char BODY[] =
    "<h1>attn report</h1>\n<p id=\"info\"></p>\n"
    "<h2>Token view</h2>\n"
    "<p class=\"note\">Hover a token in the left column to see which earlier tokens each selected head of the layer "
    "attends to; hover one in the right column to see which tokens attend to it. Line opacity = square root "
    "of the attention probability (0..1), so thinly spread attention stays visible; probabilities under "
    "1/508 (0 after 8-bit rounding) are not drawn, nor non-finite ones.</p>\n"
    "<div class=\"controls\"><label>Layer <select id=\"layer\"></select></label><span id=\"heads\"></span>"
    "<button id=\"all\">all heads</button><button id=\"none\">no heads</button></div>\n"
    "<div id=\"view-wrap\"><svg id=\"view\" xmlns=\"http://www.w3.org/2000/svg\"></svg></div>\n"
    "<h2>Layer &times; head</h2>\n"
    "<p class=\"note\">Each thumbnail is a head's attention (row = query position, column = key position, "
    "darker = more probability, square root scale). Colour = head type: the score furthest above its uniform "
    "baseline, if at least 0.3 above; otherwise &ldquo;mixed&rdquo;. Magenta cells: NaN or Inf attention (a broken "
    "model). Click a thumbnail to show it in the token "
    "view.</p>\n<div class=\"legend\" id=\"legend\"></div>\n<div id=\"grid\"></div>\n"
    "<h2>Head scores</h2>\n"
    "<p class=\"note\">Mean attention mass (0..1) on the target keys over the query rows where defined; "
    "offset = mass on key i&minus;k at the best k in 2..8; entropy in bits. Small grey numbers: random init of "
    "the same architecture / uniform causal attention. &ndash; = no row where defined; nan = NaN or Inf "
    "attention. Click a column to "
    "sort.</p>\n<div class=\"scroll\"><table id=\"scores\"></table></div>\n"
    "<h2>Next-token candidates per position</h2>\n"
    "<p class=\"note\">The model's most probable next tokens after each position (probability 0..1).</p>\n"
    "<div class=\"scroll\"><table id=\"topk\"></table></div>\n";

static const char JS[] =
    "(function(){'use strict';\n"
    "var M=JSON.parse(document.getElementById('meta').textContent);\n"
    "var raw=atob(document.getElementById('attn-data').textContent.replace(/\\s+/g,''));\n"
    "var A=new Uint8Array(raw.length);for(var n=0;n<raw.length;n++)A[n]=raw.charCodeAt(n);\n"
    "var T=M.T,L=M.n_layer,H=M.n_head,TRI=T*(T+1)/2;\n"
    "function att(l,h,i,j){var b=A[(l*H+h)*TRI+i*(i+1)/2+j];return b===255?NaN:b/254;}\n"
    "var NAMES=M.score_names,TYPES=['previous','first','self','induction','duplicate','offset'];\n"
    "var TCOL={previous:'#1f77b4',first:'#7f7f7f',self:'#2ca02c',induction:'#d62728',duplicate:'#e67e00',"
    "offset:'#9467bd',mixed:'#444444'};\n"
    "function E(tag,attrs,text){var e=document.createElement(tag);for(var k in attrs)e.setAttribute(k,attrs[k]);"
    "if(text!==undefined)e.textContent=text;return e;}\n"
    "function S(tag,attrs,text){var e=document.createElementNS('http://www.w3.org/2000/svg',tag);"
    "for(var k in attrs)e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e;}\n"
    "function fmt(v,d){return v===null||v===undefined?'\\u2013':v.toFixed(d===undefined?3:d);}\n"
    "function htype(x){var best='mixed',bd=0.3;for(var s=0;s<6;s++){var v=M.scores[x][s],u=M.uniform[s];"
    "if(v===null||u===null)continue;if(v-u>bd){bd=v-u;best=TYPES[s];}}return best;}\n"
    "function hcol(h){return 'hsl('+Math.round(360*h/H)+',70%,42%)';}\n"
    "document.title='attn report: '+M.model;\n"
    "document.getElementById('info').textContent='model '+M.model+' ('+M.arch+', '+L+' layers \\u00d7 '+H+"
    "' heads), '+T+' tokens; random-init baseline seed '+M.seed;\n"
    // token view
    "var layerSel=document.getElementById('layer'),on=[];\n"
    "for(var l=0;l<L;l++)layerSel.appendChild(E('option',{value:l},'layer '+l));\n"
    "var hbox=document.getElementById('heads'),boxes=[];\n"
    "for(var h=0;h<H;h++){on.push(true);var lb=E('label',{'class':'hb',style:'background:'+hcol(h)});"
    "var cb=E('input',{type:'checkbox'});cb.checked=true;cb.dataset.h=h;"
    "cb.addEventListener('change',function(){on[+this.dataset.h]=this.checked;redraw();});"
    "lb.appendChild(cb);lb.appendChild(document.createTextNode('head '+h));hbox.appendChild(lb);boxes.push(cb);}\n"
    "function setAll(v){for(var h=0;h<H;h++){on[h]=v;boxes[h].checked=v;}redraw();}\n"
    "document.getElementById('all').onclick=function(){setAll(true);};\n"
    "document.getElementById('none').onclick=function(){setAll(false);};\n"
    "var svg=document.getElementById('view'),ROW=18,XL=170,XR=390,TOP=8;\n"
    "svg.setAttribute('width',560);svg.setAttribute('height',TOP*2+T*ROW);\n"
    "var gl=S('g',{id:'lines'});svg.appendChild(gl);\n"
    "function y(i){return TOP+i*ROW+ROW/2;}\n"
    "var left=[],right=[],cur=null;\n"
    "for(var i=0;i<T;i++){\n"
    " var a=S('text',{x:XL-8,y:y(i)+4,'text-anchor':'end','data-side':'q','data-i':i},M.tokens[i]);\n"
    " var b=S('text',{x:XR+8,y:y(i)+4,'text-anchor':'start','data-side':'k','data-i':i},M.tokens[i]);\n"
    " a.addEventListener('mouseenter',hover);b.addEventListener('mouseenter',hover);\n"
    " svg.appendChild(a);svg.appendChild(b);left.push(a);right.push(b);}\n"
    "svg.addEventListener('mouseleave',function(){cur=null;redraw();});\n"
    "function hover(ev){cur={side:ev.target.getAttribute('data-side'),i:+ev.target.getAttribute('data-i')};redraw();}\n"
    "function redraw(){\n"
    " while(gl.firstChild)gl.removeChild(gl.firstChild);\n"
    " for(var t=0;t<T;t++){left[t].classList.remove('on');right[t].classList.remove('on');}\n"
    " if(!cur)return;\n"
    " var l=+layerSel.value,i=cur.i;(cur.side==='q'?left:right)[i].classList.add('on');\n"
    " for(var h=0;h<H;h++){if(!on[h])continue;\n"
    "  for(var t=0;t<T;t++){var q=cur.side==='q'?i:t,k=cur.side==='q'?t:i;if(k>q)continue;\n"
    "   var p=att(l,h,q,k);if(!(p>0))continue;\n"
    "   var ln=S('line',{x1:XL,y1:y(q),x2:XR,y2:y(k),stroke:hcol(h),'stroke-width':2,'stroke-opacity':Math.sqrt(p).toFixed(3)});\n"
    "   ln.appendChild(S('title',{},'layer '+l+' head '+h+': '+q+' \\u2192 '+k+'  '+p.toFixed(3)));gl.appendChild(ln);}}}\n"
    "layerSel.addEventListener('change',redraw);\n"
    // legend and grid
    "var leg=document.getElementById('legend');\n"
    "for(var ty in TCOL)leg.appendChild(E('span',{style:'background:'+TCOL[ty]},ty));\n"
    "if(A.indexOf(255)>=0)leg.appendChild(E('span',{style:'background:#ff00ff'},'non-finite (NaN/inf)'));\n"
    "var grid=document.getElementById('grid'),N=Math.min(T,128);\n"
    "grid.style.gridTemplateColumns='max-content repeat('+H+',96px)';\n"
    "grid.appendChild(E('div'));for(var h=0;h<H;h++)grid.appendChild(E('div',{'class':'lab'},'head '+h));\n"
    "function rgb(c){return [parseInt(c.substr(1,2),16),parseInt(c.substr(3,2),16),parseInt(c.substr(5,2),16)];}\n"
    "for(var l=0;l<L;l++){grid.appendChild(E('div',{'class':'lab'},'layer '+l));\n"
    " for(var h=0;h<H;h++){var x=l*H+h,ty=htype(x),col=rgb(TCOL[ty]);\n"
    "  var fig=E('figure',{title:'layer '+l+' head '+h+': '+ty}),cv=E('canvas',{width:N,height:N});\n"
    "  cv.style.borderColor=TCOL[ty];var ctx=cv.getContext('2d'),img=ctx.createImageData(N,N),d=img.data;\n"
    "  for(var r=0;r<N;r++)for(var c=0;c<N;c++){var i0=Math.floor(r*T/N),i1=Math.floor((r+1)*T/N),"
    "j0=Math.floor(c*T/N),j1=Math.floor((c+1)*T/N),m=-1;\n"
    "   for(var i=i0;i<i1;i++)for(var j=j0;j<j1&&j<=i;j++){var p=att(l,h,i,j);if(p!==p)m=2;else if(p>m)m=p;}\n"
    "   var o=(r*N+c)*4;if(m<0){d[o]=d[o+1]=d[o+2]=240;}else if(m>1){d[o]=255;d[o+1]=0;d[o+2]=255;}else{var v=Math.sqrt(m);\n"
    "   for(var z=0;z<3;z++)d[o+z]=Math.round(255+(col[z]-255)*v);}d[o+3]=255;}\n"
    "  ctx.putImageData(img,0,0);fig.appendChild(cv);\n"
    "  var s=TYPES.indexOf(ty);fig.appendChild(E('figcaption',{},ty+(s>=0?' '+fmt(M.scores[x][s],2):'')));\n"
    "  fig.dataset.l=l;fig.dataset.h=h;fig.addEventListener('click',function(){layerSel.value=this.dataset.l;\n"
    "   for(var h=0;h<H;h++){on[h]=h===+this.dataset.h;boxes[h].checked=on[h];}redraw();\n"
    "   document.getElementById('view-wrap').scrollIntoView({behavior:'smooth'});});\n"
    "  grid.appendChild(fig);}}\n"
    // score table
    "var tab=document.getElementById('scores'),cols=['layer','head','type'].concat(NAMES),sortc=-1,sortd=1;\n"
    "function cell(x,s){var v=M.scores[x][s],td=E('td');\n"
    " var t=M.nonfinite[x]>>s&1?'nan':fmt(v,s===6?2:3);if(s===5&&v!==null)t+=' @'+M.offset_k[x];td.appendChild(document.createTextNode(t));\n"
    " var b=M.baseline?M.baseline[x][s]:null;td.appendChild(E('br'));\n"
    " td.appendChild(E('small',{},fmt(b,s===6?2:3)+' / '+fmt(M.uniform[s],s===6?2:3)));return td;}\n"
    "function table(){tab.textContent='';var tr=E('tr');\n"
    " cols.forEach(function(c,ci){var th=E('th',{},c+(ci===sortc?(sortd>0?' \\u25bc':' \\u25b2'):''));"
    "th.onclick=function(){if(sortc===ci)sortd=-sortd;else{sortc=ci;sortd=1;}table();};tr.appendChild(th);});\n"
    " tab.appendChild(tr);var idx=[];for(var x=0;x<L*H;x++)idx.push(x);\n"
    " if(sortc>=3){var s=sortc-3;idx.sort(function(a,b){var u=M.scores[a][s],v=M.scores[b][s];"
    "if(u===null&&v===null)return a-b;if(u===null)return 1;if(v===null)return -1;return sortd*(v-u)||a-b;});}\n"
    " else if(sortc>=0&&sortd<0)idx.reverse();\n"
    " idx.forEach(function(x){var tr=E('tr'),ty=htype(x);tr.appendChild(E('td',{},Math.floor(x/H)));"
    "tr.appendChild(E('td',{},x%H));var tt=E('td',{'class':'t'},ty);tt.style.color=TCOL[ty];tr.appendChild(tt);\n"
    "  for(var s=0;s<NAMES.length;s++)tr.appendChild(cell(x,s));tab.appendChild(tr);});}\n"
    "table();\n"
    // top-k table
    "var tk=document.getElementById('topk'),hr=E('tr');['position','token'].forEach(function(c){hr.appendChild(E('th',{},c));});\n"
    "for(var r=1;r<=M.k;r++)hr.appendChild(E('th',{},'#'+r));tk.appendChild(hr);\n"
    "for(var i=0;i<T;i++){var tr=E('tr');tr.appendChild(E('td',{},i));tr.appendChild(E('td',{'class':'t'},M.tokens[i]));\n"
    " M.top[i].forEach(function(c){var td=E('td',{'class':'t'},c[1]+' ');td.appendChild(E('small',{},c[2]===null?'nan':c[2].toFixed(3)));"
    "td.title='id '+c[0];tr.appendChild(td);});tk.appendChild(tr);}\n"
    "})();\n";

// ---------------------------------------------------------------- data blocks

static void json_score_row(FILE *fp, const attn_head_scores *s) {
    fputc('[', fp);
    for (int k = 0; k < ATTN_S_N; k++) {
        if (k) fputc(',', fp);
        attn_json_numf(fp, "%.4g", s->s[k]);
    }
    fputc(']', fp);
}

static void json_score_rows(FILE *fp, const attn_head_scores *s, int n) {
    fputc('[', fp);
    for (int x = 0; x < n; x++) {
        if (x) fputc(',', fp);
        json_score_row(fp, &s[x]);
    }
    fputc(']', fp);
}

// The JSON data block; '<' is written as \u003c so no string can end the <script>.
static int write_meta(FILE *out, const attn_report *r) {
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp) return attn_err(ATTN_EFAIL, "report: out of memory");
    const attn_config *c = &r->m->cfg;
    int LH = c->n_layer * c->n_head;
    fputs("{\"model\":", fp);
    attn_json_str(fp, r->m->name);
    fprintf(fp, ",\"arch\":\"%s\",\"n_layer\":%d,\"n_head\":%d,\"T\":%d,\"seed\":%llu,\"k\":%d,\"tokens\":[",
            attn_arch_get(c->arch)->gguf, c->n_layer, c->n_head, r->T,
            (unsigned long long)r->seed, r->k);
    for (int i = 0; i < r->T; i++) {
        if (i) fputc(',', fp);
        attn_json_str(fp, r->labels[i]);
    }
    fputs("],\"ids\":[", fp);
    for (int i = 0; i < r->T; i++) fprintf(fp, "%s%d", i ? "," : "", r->ids[i]);
    fputs("],\"score_names\":[", fp);
    for (int k = 0; k < ATTN_S_N; k++) fprintf(fp, "%s\"%s\"", k ? "," : "", attn_score_names[k]);
    fputs("],\"scores\":", fp);
    json_score_rows(fp, r->scores, LH);
    fputs(",\"offset_k\":[", fp);
    for (int x = 0; x < LH; x++) fprintf(fp, "%s%d", x ? "," : "", r->scores[x].offset_k);
    fputs("],\"nonfinite\":[", fp); // bit s: score s met NaN/inf attention
    for (int x = 0; x < LH; x++) fprintf(fp, "%s%u", x ? "," : "", r->scores[x].nonfinite);
    fputs("],\"baseline\":", fp);
    if (r->baseline) json_score_rows(fp, r->baseline, LH);
    else fputs("null", fp);
    fputs(",\"uniform\":", fp);
    json_score_row(fp, r->uniform);
    fputs(",\"top\":[", fp);
    for (int i = 0; i < r->T; i++) {
        fputs(i ? ",[" : "[", fp);
        for (int j = 0; j < r->k; j++) {
            size_t x = (size_t)i * r->k + j;
            fprintf(fp, "%s[%d,", j ? "," : "", r->top_id[x]);
            attn_json_str(fp, r->top_labels[x]);
            fputc(',', fp);
            attn_json_numf(fp, "%.4g", r->top_prob[x]);
            fputc(']', fp);
        }
        fputc(']', fp);
    }
    fputs("]}", fp);
    if (fclose(fp)) {
        free(buf);
        return attn_err(ATTN_EFAIL, "report: out of memory");
    }
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '<') fputs("\\u003c", out);
        else fputc(buf[i], out);
    }
    free(buf);
    return 0;
}

static void base64(FILE *fp, const uint8_t *p, size_t n) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0, col = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};
        fwrite(q, 1, 4, fp);
        if ((col += 4) == 76) { // line breaks keep the file friendly to editors
            fputc('\n', fp);
            col = 0;
        }
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        fprintf(fp, "%c%c==", abc[v >> 18], abc[(v >> 12) & 63]);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        fprintf(fp, "%c%c%c=", abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63]);
    }
}

int attn_report_write(const char *path, const attn_report *r) {
    attn_outfile o;
    int rc = attn_out_open(&o, path);
    if (rc) return rc;
    FILE *fp = o.fp;
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>attn report: ", fp);
    for (const char *s = r->m->name; *s; s++) { // the only text not set by the script
        if (*s == '<') fputs("&lt;", fp);
        else if (*s == '&') fputs("&amp;", fp);
        else fputc(*s, fp);
    }
    fprintf(fp, "</title>\n<style>\n%s</style>\n</head><body>\n%s", CSS, BODY);
    fputs("<script type=\"application/json\" id=\"meta\">", fp);
    rc = write_meta(fp, r);
    if (rc) {
        attn_out_abort(&o);
        return rc;
    }
    fputs("</script>\n<script type=\"text/plain\" id=\"attn-data\">\n", fp);
    const attn_config *c = &r->m->cfg;
    base64(fp, r->attn, (size_t)c->n_layer * c->n_head * ATTN_TRI(r->T));
    fprintf(fp, "\n</script>\n<script>\n%s</script>\n</body></html>\n", JS);
    return attn_out_close(&o);
}
