// Multinomial logistic regression by L-BFGS on standardised features; k-fold cross-validation for the L2 strength.
#include "linear_probe.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace vit {
namespace {

// Standardised design: z = (x - mu) / sigma per feature (sigma = 1 for a constant feature).
struct Design {
    std::vector<double> z;          // [N, E]
    std::vector<double> mu, sigma;  // [E]
};

Design standardise(const ProbeData& d, const std::vector<int>& rows) {
    Design s;
    const std::size_t E = static_cast<std::size_t>(d.e);
    s.mu.assign(E, 0.0);
    s.sigma.assign(E, 0.0);
    for (int r : rows)
        for (std::size_t j = 0; j < E; ++j) s.mu[j] += d.x[static_cast<std::size_t>(r) * E + j];
    for (double& m : s.mu) m /= static_cast<double>(rows.size());
    for (int r : rows)
        for (std::size_t j = 0; j < E; ++j) {
            const double v = d.x[static_cast<std::size_t>(r) * E + j] - s.mu[j];
            s.sigma[j] += v * v;
        }
    for (double& v : s.sigma) {
        v = std::sqrt(v / static_cast<double>(rows.size()));
        if (!(v > 1e-12)) v = 1.0;
    }
    s.z.resize(rows.size() * E);
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t j = 0; j < E; ++j)
            s.z[i * E + j] = (d.x[static_cast<std::size_t>(rows[i]) * E + j] - s.mu[j]) / s.sigma[j];
    return s;
}

// The objective on parameters theta = [W (K x E), b (K)]: loss and gradient.
struct Objective {
    const std::vector<double>& z;
    std::vector<int> y;
    std::vector<double> w;  // per-example weight, summing to 1
    std::size_t n, e, k;
    double l2;

    double operator()(const std::vector<double>& th, std::vector<double>& g) const {
        std::fill(g.begin(), g.end(), 0.0);
        std::vector<double> logit(k);
        double loss = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const double* zi = &z[i * e];
            double mx = -std::numeric_limits<double>::infinity();
            for (std::size_t c = 0; c < k; ++c) {
                double s = th[k * e + c];
                const double* wc = &th[c * e];
                for (std::size_t j = 0; j < e; ++j) s += wc[j] * zi[j];
                logit[c] = s;
                mx = std::max(mx, s);
            }
            double sum = 0;
            for (std::size_t c = 0; c < k; ++c) sum += std::exp(logit[c] - mx);
            const double lse = mx + std::log(sum);
            loss += w[i] * (lse - logit[static_cast<std::size_t>(y[i])]);
            for (std::size_t c = 0; c < k; ++c) {
                const double p = std::exp(logit[c] - lse) - (static_cast<int>(c) == y[i] ? 1.0 : 0.0);
                const double coef = w[i] * p;
                double* gc = &g[c * e];
                for (std::size_t j = 0; j < e; ++j) gc[j] += coef * zi[j];
                g[k * e + c] += coef;
            }
        }
        for (std::size_t t = 0; t < k * e; ++t) {
            loss += 0.5 * l2 * th[t] * th[t];
            g[t] += l2 * th[t];
        }
        return loss;
    }
};

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// L-BFGS (memory 10) with a backtracking Armijo line search; returns the iterations used.
int lbfgs(const Objective& f, std::vector<double>& th, int max_iter, double tol) {
    const std::size_t m = 10, P = th.size();
    std::vector<std::vector<double>> s_hist, y_hist;
    std::vector<double> rho_hist;
    std::vector<double> g(P), g_new(P), d(P), th_new(P), alpha(m);
    double fx = f(th, g);
    int it = 0;
    for (; it < max_iter; ++it) {
        double gmax = 0;
        for (double v : g) gmax = std::max(gmax, std::fabs(v));
        if (gmax < tol) break;
        // Two-loop recursion: d = -H g.
        d = g;
        for (std::size_t i = s_hist.size(); i-- > 0;) {
            alpha[i] = rho_hist[i] * dot(s_hist[i], d);
            for (std::size_t t = 0; t < P; ++t) d[t] -= alpha[i] * y_hist[i][t];
        }
        if (!s_hist.empty()) {
            const double gamma = dot(s_hist.back(), y_hist.back()) / dot(y_hist.back(), y_hist.back());
            for (double& v : d) v *= gamma;
        }
        for (std::size_t i = 0; i < s_hist.size(); ++i) {
            const double beta = rho_hist[i] * dot(y_hist[i], d);
            for (std::size_t t = 0; t < P; ++t) d[t] += s_hist[i][t] * (alpha[i] - beta);
        }
        for (double& v : d) v = -v;
        double slope = dot(g, d);
        if (slope >= 0) {  // not a descent direction: restart from steepest descent
            for (std::size_t t = 0; t < P; ++t) d[t] = -g[t];
            slope = dot(g, d);
            s_hist.clear(), y_hist.clear(), rho_hist.clear();
        }
        double step = 1.0, f_new = 0;
        for (int ls = 0; ls < 40; ++ls) {
            for (std::size_t t = 0; t < P; ++t) th_new[t] = th[t] + step * d[t];
            f_new = f(th_new, g_new);
            if (f_new <= fx + 1e-4 * step * slope) break;
            step *= 0.5;
        }
        std::vector<double> s(P), y(P);
        for (std::size_t t = 0; t < P; ++t) s[t] = th_new[t] - th[t], y[t] = g_new[t] - g[t];
        const double sy = dot(s, y);
        th.swap(th_new);
        g.swap(g_new);
        const double f_old = fx;
        fx = f_new;
        if (sy > 1e-12) {
            if (s_hist.size() == m)
                s_hist.erase(s_hist.begin()), y_hist.erase(y_hist.begin()), rho_hist.erase(rho_hist.begin());
            s_hist.push_back(std::move(s));
            y_hist.push_back(std::move(y));
            rho_hist.push_back(1.0 / sy);
        }
        if (std::fabs(f_old - fx) <= 1e-12 * std::max(1.0, std::fabs(fx))) {
            ++it;
            break;
        }
    }
    return it;
}

// Trains on `rows` of the data: the head on raw features and the iterations used.
ProbeResult train(const ProbeData& d, const std::vector<int>& rows, double l2, const ProbeOptions& opt) {
    const Design s = standardise(d, rows);
    const std::size_t E = static_cast<std::size_t>(d.e), K = static_cast<std::size_t>(d.k);
    Objective f{s.z, {}, {}, rows.size(), E, K, l2};
    std::vector<double> count(K, 0.0);
    for (int r : rows) {
        f.y.push_back(d.y[static_cast<std::size_t>(r)]);
        count[static_cast<std::size_t>(d.y[static_cast<std::size_t>(r)])] += 1;
    }
    double total = 0;
    for (int yi : f.y) {
        const double wi = opt.balanced ? 1.0 / (static_cast<double>(K) * count[static_cast<std::size_t>(yi)]) : 1.0;
        f.w.push_back(wi);
        total += wi;
    }
    for (double& wi : f.w) wi /= total;
    std::vector<double> th(K * E + K, 0.0);
    ProbeResult r;
    r.iterations = lbfgs(f, th, opt.max_iter, opt.tol);
    r.l2 = l2;
    r.weight.resize(K * E);
    r.bias.resize(K);
    for (std::size_t c = 0; c < K; ++c) {
        double b = th[K * E + c];
        for (std::size_t j = 0; j < E; ++j) {
            const double wj = th[c * E + j] / s.sigma[j];
            r.weight[c * E + j] = static_cast<float>(wj);
            b -= wj * s.mu[j];
        }
        r.bias[c] = static_cast<float>(b);
    }
    return r;
}

double accuracy_on(const ProbeResult& h, const ProbeData& d, const std::vector<int>& rows) {
    if (rows.empty()) return 0;
    const std::size_t E = static_cast<std::size_t>(d.e), K = static_cast<std::size_t>(d.k);
    int right = 0;
    for (int r : rows) {
        const float* x = &d.x[static_cast<std::size_t>(r) * E];
        std::size_t best = 0;
        double best_v = -std::numeric_limits<double>::infinity();
        for (std::size_t c = 0; c < K; ++c) {
            double v = h.bias[c];
            for (std::size_t j = 0; j < E; ++j) v += static_cast<double>(h.weight[c * E + j]) * x[j];
            if (v > best_v) best_v = v, best = c;
        }
        right += static_cast<int>(best) == d.y[static_cast<std::size_t>(r)];
    }
    return static_cast<double>(right) / static_cast<double>(rows.size());
}

}  // namespace

double probe_accuracy(const ProbeResult& head, const ProbeData& data) {
    std::vector<int> all(static_cast<std::size_t>(data.n));
    for (int i = 0; i < data.n; ++i) all[static_cast<std::size_t>(i)] = i;
    return accuracy_on(head, data, all);
}

ProbeResult fit_probe(const ProbeData& d, const ProbeOptions& opt) {
    if (d.k < 2) throw std::invalid_argument("need at least 2 classes, got " + std::to_string(d.k));
    if (d.n <= 0 || d.e <= 0 || d.x.size() != static_cast<std::size_t>(d.n) * static_cast<std::size_t>(d.e) ||
        d.y.size() != static_cast<std::size_t>(d.n))
        throw std::invalid_argument("features and labels disagree in size");
    std::vector<std::vector<int>> by_class(static_cast<std::size_t>(d.k));
    for (int i = 0; i < d.n; ++i) {
        const int c = d.y[static_cast<std::size_t>(i)];
        if (c < 0 || c >= d.k) throw std::invalid_argument("label " + std::to_string(c) + " out of range");
        by_class[static_cast<std::size_t>(c)].push_back(i);
    }
    std::size_t smallest = static_cast<std::size_t>(d.n);
    for (std::size_t c = 0; c < by_class.size(); ++c) {
        if (by_class[c].empty()) throw std::invalid_argument("class " + std::to_string(c) + " has no examples");
        smallest = std::min(smallest, by_class[c].size());
    }
    std::vector<int> all(static_cast<std::size_t>(d.n));
    for (int i = 0; i < d.n; ++i) all[static_cast<std::size_t>(i)] = i;

    ProbeResult best;
    double l2 = opt.l2;
    double cv = -1;
    std::vector<std::pair<double, double>> scores;
    const int folds = std::min<int>(opt.folds, static_cast<int>(smallest));
    if (l2 < 0 && folds >= 2) {
        // Stratified folds: each class's examples shuffled (seeded, own Fisher-Yates over a fixed generator) and
        // dealt round-robin.
        std::vector<int> fold_of(static_cast<std::size_t>(d.n));
        std::uint64_t state = 0x9E3779B97F4A7C15ull ^ opt.seed;
        auto next = [&state] {  // splitmix64
            std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            return z ^ (z >> 31);
        };
        for (auto& members : by_class) {
            std::vector<int> m = members;
            for (std::size_t i = m.size(); i > 1; --i) std::swap(m[i - 1], m[next() % i]);
            for (std::size_t i = 0; i < m.size(); ++i)
                fold_of[static_cast<std::size_t>(m[i])] = static_cast<int>(i % folds);
        }
        double best_cv = -1;
        for (double cand : opt.l2_grid) {
            double acc = 0;
            for (int f = 0; f < folds; ++f) {
                std::vector<int> tr, te;
                for (int i = 0; i < d.n; ++i) (fold_of[static_cast<std::size_t>(i)] == f ? te : tr).push_back(i);
                acc += accuracy_on(train(d, tr, cand, opt), d, te);
            }
            acc /= folds;
            scores.push_back({cand, acc});
            if (acc >= best_cv) best_cv = acc, l2 = cand;  // ties: the stronger regularisation (later in the grid)
        }
        cv = best_cv;
    } else if (l2 < 0) {
        l2 = 1e-2;  // too few examples per class to cross-validate
    }
    best = train(d, all, l2, opt);
    best.cv_accuracy = cv;
    best.cv_scores = scores;
    best.train_accuracy = accuracy_on(best, d, all);
    return best;
}

}  // namespace vit
