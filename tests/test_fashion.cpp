// The built-in default model (models/fashion-vit) on a committed Fashion-MNIST test subset: the C++ predictions
// must equal PyTorch's (tests/fixtures/fashion_subset/expected_predictions.txt, written by
// scripts/fashion_mnist_predictions.py), and `evaluate` must map the folders to the model's labels.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "evaluate.hpp"
#include "pipeline.hpp"
#include "test_util.hpp"

using namespace vit;
using namespace vit::test;
namespace fs = std::filesystem;

namespace {

const fs::path kSubset = fixtures() / "fashion_subset";

std::map<std::string, int> expected_predictions() {
    std::ifstream in(kSubset / "expected_predictions.txt");
    REQUIRE(in);
    std::map<std::string, int> out;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto sp = line.rfind(' ');
        out[line.substr(0, sp)] = std::stoi(line.substr(sp + 1));
    }
    return out;
}

}  // namespace

TEST_CASE("default model: C++ predictions equal PyTorch's on the committed Fashion-MNIST subset") {
    VitModel model(load_model_dir(source_dir() / "models/fashion-vit"));
    const auto expected = expected_predictions();
    REQUIRE(expected.size() >= 100);
    std::vector<std::string> rel;
    for (const auto& [path, pred] : expected) rel.push_back(path);
    std::size_t next = 0;
    InputSource source = [&](SourceItem& item) {
        if (next >= rel.size()) return false;
        item.position = next;
        item.path = (kSubset / "images" / rel[next++]).string();
        return true;
    };
    int same = 0, n = 0;
    PipelineOptions opt;
    opt.batch_size = 64;
    classify_stream(
        model, source,
        [&](ClassifyResult&& r) {
            REQUIRE_MESSAGE(r.ok(), r.path << ": " << r.error);
            ++n;
            const int want = expected.at(rel[r.seq]);
            if (r.top_k[0].index == want) ++same;
            else
                MESSAGE(rel[r.seq] << ": C++ predicts " << r.top_k[0].index << " (p " << r.top_k[0].prob
                                   << "), PyTorch " << want);
            return true;
        },
        opt);
    std::printf("  fashion-vit: %d/%d subset predictions equal PyTorch's\n", same, n);
    CHECK(n == static_cast<int>(expected.size()));
    CHECK(same == n);
}

TEST_CASE("vit eval maps Fashion-MNIST folders to labels (T-shirt_top is \"T-shirt/top\")") {
    VitModel model(load_model_dir(source_dir() / "models/fashion-vit"));
    const auto classes = map_class_folders(kSubset / "images", model.spec().labels, 10);
    REQUIRE(classes.size() == 10);
    for (const auto& c : classes) {
        CAPTURE(c.folder);
        std::string label = model.spec().labels[c.index];
        for (auto& ch : label) ch = ch == '/' ? '_' : ch;
        CHECK(label == c.folder);
    }
    EvalOptions eo;
    const EvalResult r = evaluate(model, kSubset / "images", eo);
    const auto expected = expected_predictions();
    // Accuracy, per-class counts and the confusion matrix from PyTorch's predictions (the expected file), with
    // the folder of each file as its true class: evaluate must count exactly these.
    std::int64_t correct = 0;
    std::vector<std::int64_t> total(classes.size()), class_correct(classes.size());
    std::vector<std::vector<std::int64_t>> confusion(classes.size(),
                                                     std::vector<std::int64_t>(model.spec().labels.size()));
    for (const auto& [path, pred] : expected) {
        const std::string folder = path.substr(0, path.find('/'));
        std::size_t i = 0;
        while (i < classes.size() && classes[i].folder != folder) ++i;
        REQUIRE_MESSAGE(i < classes.size(), path << ": folder " << folder << " is not a class folder");
        ++total[i];
        ++confusion[i][static_cast<std::size_t>(pred)];
        if (classes[i].index == pred) ++correct, ++class_correct[i];
    }
    std::printf("  fashion-vit eval on the subset: top-1 %.4f, top-5 %.4f (%lld images)\n", r.top1(), r.top5(),
                static_cast<long long>(r.n));
    CHECK(r.n == static_cast<std::int64_t>(expected.size()));
    CHECK(r.unreadable == 0);
    CHECK(r.top1_correct == correct);
    CHECK(r.top5_correct >= r.top1_correct);
    CHECK(r.class_total == total);
    CHECK(r.class_correct == class_correct);
    CHECK(r.confusion == confusion);
}
