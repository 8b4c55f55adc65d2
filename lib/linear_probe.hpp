// Linear probing: a multinomial logistic-regression head trained on frozen features (vit fit).
//
// Dimension letters: N examples, E features, K classes.
#pragma once

#include <cstdint>
#include <vector>

namespace vit {

struct ProbeData {
    std::vector<float> x;  // [N, E] features, row-major
    std::vector<int> y;    // [N] class indices in [0, K)
    int n = 0, e = 0, k = 0;
};

struct ProbeOptions {
    double l2 = -1;  // L2 strength on the (standardised) weights; < 0: chosen by cross-validation
    std::vector<double> l2_grid = {1e-4, 1e-3, 1e-2, 1e-1, 1.0};
    int folds = 5;         // k-fold cross-validation (stratified), capped by the smallest class
    bool balanced = true;  // class weights n / (K * n_c): imbalanced folders weigh classes equally
    unsigned seed = 0;     // fold assignment; everything else is deterministic
    int max_iter = 500;    // L-BFGS iterations
    double tol = 1e-7;     // stop when the gradient's max norm falls below this
};

struct ProbeResult {
    std::vector<float> weight;                         // [K, E] on the raw features (standardisation folded in)
    std::vector<float> bias;                           // [K]
    double l2 = 0;                                     // the strength used
    double train_accuracy = 0;                         // on all N examples
    double cv_accuracy = -1;                           // mean over folds (-1 when l2 was given)
    std::vector<std::pair<double, double>> cv_scores;  // (l2, cv accuracy) per grid value
    int iterations = 0;                                // of the final fit
};

// Fits the head: standardises the features, minimises the class-weighted mean cross-entropy + l2/2 |W|^2 with
// L-BFGS in double precision (bias not penalised), single-threaded, so the same data gives the same bits.
// Throws std::invalid_argument for fewer than 2 classes, an empty class or inconsistent sizes.
ProbeResult fit_probe(const ProbeData& data, const ProbeOptions& opt);

// Top-1 accuracy of a head on features [N, E].
double probe_accuracy(const ProbeResult& head, const ProbeData& data);

}  // namespace vit
