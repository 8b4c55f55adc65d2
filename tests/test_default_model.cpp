// The built-in default model (models/deit-tiny-imagenet, F16): its weights are the ../shared DeiT-tiny float32
// weights rounded to float16, its config is the deit_tiny preset, and it keeps the float32 model's accuracy on
// the 1000 ImageNet samples (0.795 +/- 0.002, the bound that decided to store it as F16).
#include <doctest/doctest.h>

#include "imagenet_sample.hpp"

using namespace vit;
using namespace vit::test;
namespace fs = std::filesystem;

namespace {

const fs::path kModel = source_dir() / "models/deit-tiny-imagenet";

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
    const auto rows = read_pil_top1();
    SafetensorsFile ref(fixtures() / "deit_tiny/reference.safetensors");
    CHECK(report("built-in F16 logits vs PyTorch F32, 20 images", sample_logits(model, spec, rows, 20),
                 tensor(ref, "logits")) <= 0.1f);

    PipelineOptions opt;
    opt.batch_size = 32;
    const SampleRun run = classify_sample(model, rows, opt);
    std::printf("  built-in F16 on 1000 ImageNet samples: top-1 %.4f, top-5 %.4f, same top-1 as PyTorch F32 on %.4f\n",
                run.correct1 / 1000.0, run.correct5 / 1000.0, run.agree_pil / 1000.0);
    CHECK(std::abs(run.correct1 / 1000.0 - 0.795) <= 0.002 + 1e-9);
    CHECK(run.agree_pil >= 990);
}
