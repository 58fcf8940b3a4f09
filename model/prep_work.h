/* prep_work.h - prep_canonical's working planes (preprocess.h), shared by
 * preprocess.c (the pipeline: structure, ink, the digit) and
 * prep_background.c (the background: found, trimmed, filled in under the
 * ink). Internal to the runtime, not an API: prep_canonical owns one on its
 * stack for each call.
 */
#ifndef BNN_PREP_WORK_H
#define BNN_PREP_WORK_H

#include "rowmask.h"

#include <stdint.h>

/* NaN-free min/max (fminf/fmaxf are library calls that honour NaN). */
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define WORK_MAX 64 /* pictures are worked on at most this size */
#define WORK_PIXELS (WORK_MAX * WORK_MAX)
_Static_assert(WORK_MAX <= ROWMASK_MAX, "a row in one mask");

/* The working planes have a frame one pixel wide around the picture: pixel
 * (x, y) is at AT(x, y), rows STRIDE apart, so a pixel's 8 neighbours are
 * always at the same offsets. The searches keep the pixels they may still
 * visit in row masks (below), 0 on the frame, so they never step outside. */
#define STRIDE (WORK_MAX + 2)
#define PLANE (STRIDE * (WORK_MAX + 2))
#define AT(x, y) (((y) + 1) * STRIDE + (x) + 1)

/* Row masks (rowmask.h): bit x of m[y + 1] stands for pixel (x, y). */
#define MASK_ROWS ROWMASK_ROWS
#define BIT(x) (UINT64_C(1) << (x))

/* The working planes, (h, w) inside the frame, w, h <= WORK_MAX. */
struct prep_work {
    int w, h;
    float px[PLANE];    /* the picture, [0,1] (0 on the frame) */
    float tmp[PLANE];   /* filter scratch */
    float open[PLANE];  /* then: structure */
    float close[PLANE]; /* then: ink */
    float bg[PLANE];
    uint64_t page[MASK_ROWS];    /* background whose level is the picture's */
    uint64_t trimmed[MASK_ROWS]; /* background too near the ink: filled in */
    uint64_t ink[MASK_ROWS];     /* ink >= INK_MASK of its peak */
    int queue[WORK_PIXELS];
    int label[PLANE]; /* background region, then ink part */
};

/* Comparisons become row masks through bytes over a row's first
 * PACK_WIDTH(w) columns (rowmask.h); the planes hold 0 in those past the
 * picture. */
#define PACK_WIDTH(w) ROWMASK_PACK_WIDTH(w)

/* The background (w->page): the calm pixels (structure in w->open below
 * `calm`) reachable from the border through calm pixels in steps below
 * `step`; w->label = their regions. Returns the number of background
 * pixels. */
int prep_grow_background(struct prep_work *w, float calm, float step);

/* The background nearer than `margin` (chessboard distance) to anything
 * else moves from w->page to w->trimmed, unless none would be left. */
void prep_trim_background(struct prep_work *w, int margin);

/* w->bg = the background's level everywhere: the picture on w->page,
 * filled in under everything else. */
void prep_fill_background(struct prep_work *w);

#endif
