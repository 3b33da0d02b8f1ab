// attn_font.h - the built-in bitmap font (attn_font.c), private to the
// renderer (attn_render.c). A glyph is GLYPH_W pixels wide (Hangul 11) in a
// BOX_H-row text box: two rows for the accents of capitals, then from the cap
// line (CAP_ROW) down to the baseline, and two rows of descenders. Advance
// w + 1 pixels, line height LINE_H.
#ifndef ATTN_FONT_H
#define ATTN_FONT_H

#include <stdint.h>

#define GLYPH_W 5
#define BOX_H 11
#define LINE_H 12
#define CAP_ROW 2 // first row of a glyph's 9 rows inside the text box

typedef struct {
    uint16_t row[BOX_H]; // bit (w-1-x) = ink at column x
    int w;               // ink columns; the advance is w + 1
} attn_glyph;

// The glyph of code point cp; a character the font lacks is an empty box.
void attn_glyph_of(uint32_t cp, attn_glyph *g);

#endif
