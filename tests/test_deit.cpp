// Real ImageNet weights end to end: DeiT-tiny from ../shared on the 1000-image ImageNet sample, against the
// PyTorch + PIL pipeline (tests/fixtures/deit_tiny, written by scripts/make_deit_reference.py).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "pipeline.hpp"
#include "test_util.hpp"

using namespace vit;
using namespace vit::test;
namespace fs = std::filesystem;

namespace {

ModelSpec deit_spec() {
    const fs::path weights = shared() / "models/deit-tiny-imagenet/model.safetensors";
    REQUIRE_MESSAGE(fs::exists(weights), "DeiT-tiny weights not found at " << weights.string());
    return load_model_spec(source_dir() / "configs/deit_tiny_patch16_224.json", weights);
}

struct Row {
    std::string file;
    int pil_top1, truth;
};

std::vector<Row> read_pil_top1() {
    std::ifstream in(fixtures() / "deit_tiny/pil_top1.txt");
    REQUIRE(in);
    std::vector<Row> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        Row r;
        ss >> r.file >> r.pil_top1 >> r.truth;
        rows.push_back(r);
    }
    return rows;
}

}  // namespace

TEST_CASE("DeiT-tiny logits on the first 20 ImageNet samples match PyTorch + PIL") {
    const ModelSpec spec = deit_spec();
    VitModel model(spec);
    const auto rows = read_pil_top1();
    REQUIRE(rows.size() == 1000);
    SafetensorsFile ref(fixtures() / "deit_tiny/reference.safetensors");
    const auto want = tensor(ref, "logits");
    const int n = 20, K = 1000;
    std::vector<float> input(static_cast<std::size_t>(n) * model.input_size()), got(static_cast<std::size_t>(n) * K);
    for (int i = 0; i < n; ++i)
        load_input((shared() / "data/imagenet-sample" / rows[i].file).string(), spec,
                   input.data() + i * model.input_size());
    model.forward(input.data(), n, got.data());
    const float d = report("deit_tiny logits, 20 images", got, want);
    CHECK(d <= 1e-3f);
}

namespace {

struct Run {
    std::vector<int> top1;  // per image, in pil_top1.txt order
    int correct1 = 0, correct5 = 0, agree_pil = 0;
};

Run classify_all(Precision precision, const std::vector<Row>& rows) {
    const ModelSpec spec = deit_spec();
    VitModel model(spec, precision);
    std::size_t next = 0;
    InputSource source = [&](SourceItem& item) {
        if (next >= rows.size()) return false;
        item.position = next;
        item.path = (shared() / "data/imagenet-sample" / rows[next++].file).string();
        return true;
    };
    Run run;
    run.top1.assign(rows.size(), -1);
    PipelineOptions opt;
    opt.batch_size = 32;
    opt.decode_threads = 1;
    const auto failures = classify_stream(
        model, source,
        [&](ClassifyResult&& r) {
            REQUIRE_MESSAGE(r.ok(), r.path << ": " << r.error);
            const Row& row = rows[r.seq];
            run.top1[r.seq] = r.top_k[0].index;
            run.correct1 += r.top_k[0].index == row.truth;
            run.agree_pil += r.top_k[0].index == row.pil_top1;
            for (const auto& p : r.top_k) run.correct5 += p.index == row.truth;
            return true;
        },
        opt);
    CHECK(failures == 0);
    std::printf(
        "  deit_tiny %s on 1000 ImageNet samples: top-1 %.4f, top-5 %.4f, top-1 agreement with PIL pipeline %.4f\n",
        to_string(precision).c_str(), run.correct1 / 1000.0, run.correct5 / 1000.0, run.agree_pil / 1000.0);
    return run;
}

}  // namespace

TEST_CASE("DeiT-tiny accuracy on all 1000 samples and agreement with the PIL pipeline; int8 accuracy guard") {
    const auto rows = read_pil_top1();
    REQUIRE(rows.size() == 1000);
    const Run fp32 = classify_all(Precision::F32, rows);
    CHECK(std::abs(fp32.correct1 / 1000.0 - 0.795) <= 0.003 + 1e-9);
    CHECK(fp32.agree_pil / 1000.0 >= 0.995);

    const Run int8 = classify_all(Precision::INT8, rows);
    int agree = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) agree += int8.top1[i] == fp32.top1[i];
    std::printf("  int8 top-1 agrees with fp32 on %.4f of images; accuracy change %+.1f points\n", agree / 1000.0,
                (int8.correct1 - fp32.correct1) / 10.0);
    CHECK(std::abs(int8.correct1 - fp32.correct1) <= 10);  // within 1.0 point
}
