/* Max pooling over PK_L channels per vector (C a multiple of PK_L), for
 * one vector width: included by pool2d.c once per width, with (undefined
 * again at its end)
 *   PK_V, PK_VU, PK_VI  the vector type, its unaligned variant, its int variant
 *   PK_L        its lanes (16: AVX-512, 8: AVX2)
 *   PK_NAME(x)  the name of this width's x
 * Maxima and the gradient's routing are exact, so both widths give the
 * same bits as the plain loops. */

CNNVIZ_HOT
static void PK_NAME(maxpool_forward)(const pool2d_layer *q, const float *restrict x, float *restrict y) {
    int C = q->C;
    for (int oy = 0; oy < q->OH; oy++)
        for (int ox = 0; ox < q->OW; ox++) {
            int y0, y1, x0, x1;
            pool_window(q, oy, ox, &y0, &y1, &x0, &x1);
            float *o = y + ((size_t)oy * q->OW + ox) * C;
            for (int c = 0; c < C; c += PK_L) {
                const float *v = x + ((size_t)y0 * q->W + x0) * C + c;
                PK_V m = *(const PK_VU *)v;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        PK_V u = *(const PK_VU *)(x + ((size_t)iy * q->W + ix) * C + c);
                        PK_VI gt = u > m;
                        m = (PK_V)(((PK_VI)u & gt) | ((PK_VI)m & ~gt));
                    }
                *(PK_VU *)(o + c) = m;
            }
        }
}

CNNVIZ_HOT
static void PK_NAME(maxpool_backward)(const pool2d_layer *q, const float *restrict x, const float *restrict y,
                                 const float *restrict dy, float *restrict dx, int relu_input) {
    int C = q->C;
    const PK_VI none = {0};
    if (tiles(q)) {
        int y1, x1, dummy;
        pool_window(q, q->OH - 1, q->OW - 1, &dummy, &y1, &dummy, &x1);
        for (int iy = 0; iy < q->H; iy++) {
            size_t row = (size_t)iy * q->W * C;
            if (iy >= y1)
                memset(dx + row, 0, (size_t)q->W * C * sizeof *dx);
            else if (x1 < q->W)
                memset(dx + row + (size_t)x1 * C, 0, (size_t)(q->W - x1) * C * sizeof *dx);
        }
    } else {
        memset(dx, 0, (size_t)q->H * q->W * C * sizeof *dx);
    }
    for (int oy = 0; oy < q->OH; oy++)
        for (int ox = 0; ox < q->OW; ox++) {
            int y0, y1, x0, x1;
            pool_window(q, oy, ox, &y0, &y1, &x0, &x1);
            size_t o = ((size_t)oy * q->OW + ox) * C;
            for (int c = 0; c < C; c += PK_L) {
                PK_V m = *(const PK_VU *)(y + o + c);
                PK_V g = *(const PK_VU *)(dy + o + c);
                /* with relu_input, a maximum of 0 sends nothing down */
                PK_VI pending = relu_input ? (PK_VI)(m > (PK_V){0}) : ~none;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        size_t i = ((size_t)iy * q->W + ix) * C + c;
                        PK_VI hit = (*(const PK_VU *)(x + i) == m) & pending;
                        PK_V add = (PK_V)((PK_VI)g & hit);
                        if (tiles(q))
                            *(PK_VU *)(dx + i) = add;
                        else
                            *(PK_VU *)(dx + i) += add;
                        pending &= ~hit;
                    }
            }
        }
}

#undef PK_V
#undef PK_VU
#undef PK_VI
#undef PK_L
#undef PK_NAME
