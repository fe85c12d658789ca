/* The scalar rules of F.max_pool2d(x, 2) (stride 2, no padding) and of its
 * gradient, one output row at a time: the float64 reference in pool.c and the
 * row tails of the float32 kernels (maxpool2x2.c) use the same macros. */
#ifndef NABLA_MAXPOOL2X2_ROWS_H
#define NABLA_MAXPOOL2X2_ROWS_H

/* One output row's gradient into two input rows: dy at each window's winning
 * tap, 0 at the others. float32 goes four windows at a time (maxpool2x2.c). */
#define UNPOOL_ROW_SCALAR(T)                                                                                 \
    for (; ow < OW; ow++) {                                                                                  \
        T v = d[ow];                                                                                         \
        uint8_t k = t[ow];                                                                                   \
        T a = k == 0 ? v : (T)0, b = k == 1 ? v : (T)0, e = k == 2 ? v : (T)0, f = k == 3 ? v : (T)0;        \
        r0[2 * ow] = a;                                                                                      \
        r0[2 * ow + 1] = b;                                                                                  \
        r1[2 * ow] = e;                                                                                      \
        r1[2 * ow + 1] = f;                                                                                  \
    }

/* One output row of F.max_pool2d(x, 2) from input rows r0, r1: y = the
 * window maxima (then nb_relu's rule, y < 0 ? 0 : y, if relu), t = the
 * winning taps. PyTorch's rule in kh, kw order: a strictly larger value or
 * a NaN takes over, else the earlier tap stays. */
#define POOL_ROW_SCALAR(T)                                                         \
    for (; ow < OW; ow++) {                                                        \
        T b = r0[2 * ow], v = r0[2 * ow + 1];                                      \
        uint8_t k = 0;                                                             \
        bool tk = (v > b) | (v != v);                                              \
        b = tk ? v : b;                                                            \
        k = tk ? 1 : k;                                                            \
        v = r1[2 * ow];                                                            \
        tk = (v > b) | (v != v);                                                   \
        b = tk ? v : b;                                                            \
        k = tk ? 2 : k;                                                            \
        v = r1[2 * ow + 1];                                                        \
        tk = (v > b) | (v != v);                                                   \
        b = tk ? v : b;                                                            \
        k = tk ? 3 : k;                                                            \
        y[ow] = relu && b < 0 ? (T)0 : b;                                          \
        t[ow] = k;                                                                 \
    }

#endif
