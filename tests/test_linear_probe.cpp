// The linear-probe solver (vit fit) and the .npy header (vit embed): separable classes are recovered, the fit is
// bit-for-bit deterministic, the optimum satisfies its first-order condition, bad data is refused.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "linear_probe.hpp"
#include "npy.hpp"

using namespace vit;

namespace {

// K Gaussian clusters in E dimensions, `per` examples each (std::mt19937 is specified bit for bit).
ProbeData clusters(int K, int E, int per, double spread, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<double> noise(0.0, 1.0);
    ProbeData d;
    d.k = K, d.e = E, d.n = K * per;
    for (int c = 0; c < K; ++c)
        for (int i = 0; i < per; ++i) {
            for (int j = 0; j < E; ++j)
                d.x.push_back(static_cast<float>((j % K == c ? 4.0 : 0.0) + spread * noise(gen)));
            d.y.push_back(c);
        }
    return d;
}

}  // namespace

TEST_CASE("separable clusters are recovered, deterministically") {
    const ProbeData d = clusters(3, 6, 20, 0.5, 1);
    ProbeOptions opt;
    const ProbeResult a = fit_probe(d, opt), b = fit_probe(d, opt);
    CHECK(a.train_accuracy == 1.0);
    CHECK(a.cv_accuracy >= 0.95);
    CHECK(a.cv_scores.size() == opt.l2_grid.size());
    REQUIRE(a.weight.size() == 3u * 6u);
    CHECK(std::memcmp(a.weight.data(), b.weight.data(), a.weight.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(a.bias.data(), b.bias.data(), a.bias.size() * sizeof(float)) == 0);
    // Held-out examples from the same clusters.
    const ProbeData test = clusters(3, 6, 50, 0.5, 2);
    CHECK(probe_accuracy(a, test) >= 0.97);
}

TEST_CASE("at the optimum the gradient of the penalised loss vanishes") {
    // Two overlapping classes in 1-D, unbalanced weights off: for logistic regression with L2 on the standardised
    // weight, the class-mean condition sum_i (p_i - y_i) = 0 holds for the unpenalised bias.
    ProbeData d;
    d.k = 2, d.e = 1;
    const float xs[] = {-2, -1, -0.5f, 0.2f, 0.1f, 0.5f, 1, 2.5f};
    const int ys[] = {0, 0, 1, 0, 1, 1, 0, 1};
    for (int i = 0; i < 8; ++i) d.x.push_back(xs[i]), d.y.push_back(ys[i]);
    d.n = 8;
    ProbeOptions opt;
    opt.l2 = 0.1;
    opt.balanced = false;
    const ProbeResult r = fit_probe(d, opt);
    double sum = 0;
    for (int i = 0; i < 8; ++i) {
        const double z0 = r.weight[0] * xs[i] + r.bias[0], z1 = r.weight[1] * xs[i] + r.bias[1];
        const double p1 = 1.0 / (1.0 + std::exp(z0 - z1));
        sum += p1 - ys[i];
    }
    std::printf("  bias stationarity: sum(p - y) = %.3g\n", sum);
    CHECK(std::fabs(sum) < 1e-4);
    CHECK(r.cv_accuracy == -1);  // l2 given: no cross-validation
}

TEST_CASE("bad training data is refused") {
    ProbeData one;
    one.k = 1, one.e = 1, one.n = 2, one.x = {1, 2}, one.y = {0, 0};
    CHECK_THROWS_AS(fit_probe(one, {}), std::invalid_argument);
    ProbeData empty_class;
    empty_class.k = 3, empty_class.e = 1, empty_class.n = 2, empty_class.x = {1, 2}, empty_class.y = {0, 2};
    CHECK_THROWS_WITH_AS(fit_probe(empty_class, {}), "class 1 has no examples", std::invalid_argument);
}

TEST_CASE(".npy header is numpy's format 1.0") {
    const std::string h = npy_header_f32(3, 192);
    CHECK(h.size() % 64 == 0);
    CHECK(h.compare(0, 6, "\x93NUMPY") == 0);
    CHECK(h[6] == 1);
    CHECK(h[7] == 0);
    const std::size_t len = static_cast<unsigned char>(h[8]) | (static_cast<unsigned char>(h[9]) << 8);
    CHECK(len + 10 == h.size());
    CHECK(h.find("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 192), }") == 10);
    CHECK(h.back() == '\n');
}
