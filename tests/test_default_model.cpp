// The built-in default model (models/deit-tiny-imagenet, F16): its weights are the ../shared DeiT-tiny float32
// weights rounded to float16, its config is the deit_tiny preset, and it keeps the float32 model's accuracy on
// the 1000 ImageNet samples (0.795 +/- 0.002, the bound that decided to store it as F16).
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "pipeline.hpp"
#include "test_util.hpp"

using namespace vit;
using namespace vit::test;
namespace fs = std::filesystem;

namespace {

const fs::path kModel = source_dir() / "models/deit-tiny-imagenet";

struct Row {
    std::string file;
    int pil_top1, truth;
};

std::vector<Row> read_rows() {
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

TEST_CASE("built-in model: the ../shared float32 weights rounded to float16, the deit_tiny preset's config") {
    SafetensorsFile f16(kModel / "model.safetensors");
    SafetensorsFile f32(shared() / "models/deit-tiny-imagenet/model.safetensors");
    REQUIRE(f16.tensors().size() == f32.tensors().size());
    double worst = 0;
    for (const auto& [name, t] : f32.tensors()) {
        const TensorView* h = f16.find(name);
        REQUIRE_MESSAGE(h, "tensor " << name << " missing from the built-in model");
        CHECK(h->dtype == DType::F16);
        CHECK(h->shape == t.shape);
        const auto a = to_f32(t), b = to_f32(*h);
        // Round to nearest float16: relative error <= 2^-11 for normals, absolute <= 2^-25 for subnormals.
        std::size_t off = 0, first = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
            const double err = std::fabs(double(a[i]) - b[i]);
            worst = std::max(worst, err);
            if (err > std::fabs(a[i]) * 0x1p-11 + 0x1p-25 && !off++) first = i;
        }
        CHECK_MESSAGE(off == 0, name << ": " << off << " values off, first [" << first << "]: " << a[first] << " vs "
                                     << b[first]);
    }
    std::printf("  built-in F16 vs ../shared F32 weights: max abs rounding error %.3g\n", worst);

    const ModelSpec spec = load_model_dir(kModel);
    const ModelSpec preset = load_model_spec(source_dir() / "configs/deit_tiny_patch16_224.json",
                                             kModel / "model.safetensors");
    CHECK(spec.labels == preset.labels);
    CHECK(spec.model.embed_dim == 192);
    CHECK(spec.preprocess.resize == preset.preprocess.resize);
    CHECK(spec.preprocess.crop == preset.preprocess.crop);
    CHECK(spec.preprocess.mean == preset.preprocess.mean);
    CHECK(spec.preprocess.std == preset.preprocess.std);
    CHECK(spec.preprocess.interpolation == preset.preprocess.interpolation);
}

TEST_CASE("built-in model: logits near PyTorch's float32 ones, accuracy on all 1000 samples within 0.795 +/- 0.002") {
    const ModelSpec spec = load_model_dir(kModel);
    VitModel model(spec);
    const auto rows = read_rows();
    REQUIRE(rows.size() == 1000);

    SafetensorsFile ref(fixtures() / "deit_tiny/reference.safetensors");
    const auto want = tensor(ref, "logits");
    const int n = 20;
    std::vector<float> input(static_cast<std::size_t>(n) * model.input_size()), got(static_cast<std::size_t>(n) * 1000);
    for (int i = 0; i < n; ++i)
        load_input((shared() / "data/imagenet-sample" / rows[i].file).string(), spec,
                   input.data() + i * model.input_size());
    model.forward(input.data(), n, got.data());
    CHECK(report("built-in F16 logits vs PyTorch F32, 20 images", got, want) <= 0.1f);

    std::size_t next = 0;
    InputSource source = [&](SourceItem& item) {
        if (next >= rows.size()) return false;
        item.position = next;
        item.path = (shared() / "data/imagenet-sample" / rows[next++].file).string();
        return true;
    };
    int top1 = 0, top5 = 0, agree = 0;
    PipelineOptions opt;
    opt.batch_size = 32;
    const auto failures = classify_stream(
        model, source,
        [&](ClassifyResult&& r) {
            REQUIRE_MESSAGE(r.ok(), r.path << ": " << r.error);
            const Row& row = rows[r.seq];
            top1 += r.top_k[0].index == row.truth;
            agree += r.top_k[0].index == row.pil_top1;
            for (const auto& p : r.top_k) top5 += p.index == row.truth;
            return true;
        },
        opt);
    CHECK(failures == 0);
    std::printf("  built-in F16 on 1000 ImageNet samples: top-1 %.4f, top-5 %.4f, same top-1 as PyTorch F32 on %.4f\n",
                top1 / 1000.0, top5 / 1000.0, agree / 1000.0);
    CHECK(std::abs(top1 / 1000.0 - 0.795) <= 0.002 + 1e-9);
    CHECK(agree >= 990);
}
