// torch's bicubic interpolation (upsample_bicubic2d and its antialiased variant) on a grid of embeddings.
#include "pos_embed.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace vit {
namespace {

// One output position's taps along an axis: source indices and weights.
struct Taps {
    std::vector<int> index;
    std::vector<double> weight;
};

// upsample_bicubic2d, align_corners=False: source x = scale * (i + 0.5) - 0.5, Keys' cubic with A = -0.75 on
// the four neighbours, indices clamped to the border.
Taps bicubic_taps(int i, int in_size, double scale) {
    constexpr double A = -0.75;
    const double real = scale * (i + 0.5) - 0.5;
    const double fl = std::floor(real);
    const double t = real - fl;
    auto near = [](double x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };       // |x| <= 1
    auto far = [](double x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };  // 1 < |x| < 2
    const double w[4] = {far(t + 1), near(t), near(1 - t), far(2 - t)};
    Taps taps;
    for (int k = 0; k < 4; ++k) {
        taps.index.push_back(std::clamp(static_cast<int>(fl) - 1 + k, 0, in_size - 1));
        taps.weight.push_back(w[k]);
    }
    return taps;
}

// The antialiased variant (PIL's convolution): Keys' cubic with a = -0.5, support widened by the downscale
// factor, weights normalised to sum 1.
Taps antialias_taps(int i, int in_size, double scale) {
    auto filter = [](double x) {
        constexpr double a = -0.5;
        x = std::fabs(x);
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    };
    const double support = scale >= 1 ? 2 * scale : 2.0;
    const double center = scale * (i + 0.5);
    const double invscale = scale >= 1 ? 1 / scale : 1.0;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size);
    Taps taps;
    double total = 0;
    for (int j = xmin; j < xmax; ++j) {
        const double w = filter((j - center + 0.5) * invscale);
        taps.index.push_back(j);
        taps.weight.push_back(w);
        total += w;
    }
    if (total != 0)
        for (double& w : taps.weight) w /= total;
    return taps;
}

}  // namespace

std::vector<float> resample_pos_grid(const float* grid, int g0, int g1, int D, PosResample method) {
    const double scale = static_cast<double>(g0) / g1;
    std::vector<Taps> taps;
    for (int i = 0; i < g1; ++i)
        taps.push_back(method == PosResample::Bicubic ? bicubic_taps(i, g0, scale) : antialias_taps(i, g0, scale));
    // Separable: along x into [g0, g1, D], then along y into [g1, g1, D].
    std::vector<double> rows(static_cast<std::size_t>(g0) * g1 * D, 0.0);
    for (int y = 0; y < g0; ++y)
        for (int x = 0; x < g1; ++x) {
            double* out = &rows[(static_cast<std::size_t>(y) * g1 + x) * D];
            for (std::size_t k = 0; k < taps[x].index.size(); ++k) {
                const float* in = grid + (static_cast<std::size_t>(y) * g0 + taps[x].index[k]) * D;
                for (int d = 0; d < D; ++d) out[d] += taps[x].weight[k] * in[d];
            }
        }
    std::vector<float> out(static_cast<std::size_t>(g1) * g1 * D);
    std::vector<double> acc(D);
    for (int y = 0; y < g1; ++y)
        for (int x = 0; x < g1; ++x) {
            std::fill(acc.begin(), acc.end(), 0.0);
            for (std::size_t k = 0; k < taps[y].index.size(); ++k) {
                const double* in = &rows[(static_cast<std::size_t>(taps[y].index[k]) * g1 + x) * D];
                for (int d = 0; d < D; ++d) acc[d] += taps[y].weight[k] * in[d];
            }
            for (int d = 0; d < D; ++d)
                out[(static_cast<std::size_t>(y) * g1 + x) * D + d] = static_cast<float>(acc[d]);
        }
    return out;
}

}  // namespace vit
