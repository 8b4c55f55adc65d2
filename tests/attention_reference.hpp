// float64 multi-head attention, the reference of the attention tests: softmax(Q·Kᵀ·scale)·V per (image, head).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

struct AttentionReference {
    std::vector<double> probs;  // [B, H, T, T]
    std::vector<double> ctx;    // [B, T, H, d]
};

// at(b, t, j, h, k): element k of head h of q (j = 0), k (1) or v (2) at token t of image b.
template <typename At>
AttentionReference attention_reference(std::int64_t B, std::int64_t T, std::int64_t H, std::int64_t d, double scale,
                                       At at) {
    AttentionReference r{std::vector<double>(static_cast<std::size_t>(B * H * T * T)),
                         std::vector<double>(static_cast<std::size_t>(B * T * H * d))};
    for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t h = 0; h < H; ++h)
            for (std::int64_t i = 0; i < T; ++i) {
                double* row = &r.probs[static_cast<std::size_t>(((b * H + h) * T + i) * T)];
                double mx = -1e300, sum = 0;
                for (std::int64_t j = 0; j < T; ++j) {
                    double dot = 0;
                    for (std::int64_t k = 0; k < d; ++k) dot += at(b, i, 0, h, k) * at(b, j, 1, h, k);
                    row[j] = dot * scale;
                    mx = std::max(mx, row[j]);
                }
                for (std::int64_t j = 0; j < T; ++j) sum += (row[j] = std::exp(row[j] - mx));
                for (std::int64_t j = 0; j < T; ++j) row[j] /= sum;
                for (std::int64_t k = 0; k < d; ++k) {
                    double acc = 0;
                    for (std::int64_t j = 0; j < T; ++j) acc += row[j] * at(b, j, 2, h, k);
                    r.ctx[static_cast<std::size_t>(((b * T + i) * H + h) * d + k)] = acc;
                }
            }
    return r;
}
