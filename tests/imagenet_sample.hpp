// The 1000-image ImageNet sample of ../shared as the DeiT tests use it: the rows of
// tests/fixtures/deit_tiny/pil_top1.txt (file, PyTorch + PIL top-1, true class), the logits of the first images
// through load_input, and a whole-sample classify_stream run counted against both.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline.hpp"
#include "test_util.hpp"

namespace vit::test {

struct SampleRow {
    std::string file;
    int pil_top1, truth;
};

inline std::filesystem::path sample_image(const SampleRow& row) { return shared() / "data/imagenet-sample" / row.file; }

// The rows of pil_top1.txt in order; all 1000 of them, or the test stops.
inline std::vector<SampleRow> read_pil_top1() {
    std::ifstream in(fixtures() / "deit_tiny/pil_top1.txt");
    REQUIRE(in);
    std::vector<SampleRow> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        SampleRow r;
        ss >> r.file >> r.pil_top1 >> r.truth;
        rows.push_back(r);
    }
    REQUIRE(rows.size() == 1000);
    return rows;
}

// Logits [n, num_classes] of the first n rows, preprocessed by load_input and run as one batch.
inline std::vector<float> sample_logits(VitModel& model, const ModelSpec& spec, const std::vector<SampleRow>& rows,
                                        int n) {
    const auto per_image = static_cast<std::size_t>(model.input_size());
    std::vector<float> input(static_cast<std::size_t>(n) * per_image);
    std::vector<float> logits(static_cast<std::size_t>(n) * static_cast<std::size_t>(spec.model.num_classes));
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
        load_input(sample_image(rows[i]).string(), spec, input.data() + i * per_image);
    model.forward(input.data(), n, logits.data());
    return logits;
}

struct SampleRun {
    std::vector<int> top1;  // per image, in pil_top1.txt order
    int correct1 = 0, correct5 = 0, agree_pil = 0;
};

// Every row through classify_stream (opt: batch size, decode threads); each must classify.
inline SampleRun classify_sample(VitModel& model, const std::vector<SampleRow>& rows, const PipelineOptions& opt) {
    std::size_t next = 0;
    InputSource source = [&](SourceItem& item) {
        if (next >= rows.size()) return false;
        item.position = next;
        item.path = sample_image(rows[next++]).string();
        return true;
    };
    SampleRun run;
    run.top1.assign(rows.size(), -1);
    const auto failures = classify_stream(
        model, source,
        [&](ClassifyResult&& r) {
            REQUIRE_MESSAGE(r.ok(), r.path << ": " << r.error);
            const SampleRow& row = rows[r.seq];
            run.top1[r.seq] = r.top_k[0].index;
            run.correct1 += r.top_k[0].index == row.truth;
            run.agree_pil += r.top_k[0].index == row.pil_top1;
            for (const auto& p : r.top_k) run.correct5 += p.index == row.truth;
            return true;
        },
        opt);
    CHECK(failures == 0);
    CHECK(std::count(run.top1.begin(), run.top1.end(), -1) == 0);  // one result per row
    return run;
}

}  // namespace vit::test
