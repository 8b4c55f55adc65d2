// Real ImageNet weights end to end: DeiT-tiny from ../shared on the 1000-image ImageNet sample, against the
// PyTorch + PIL pipeline (tests/fixtures/deit_tiny, written by scripts/make_deit_reference.py).
#include <doctest/doctest.h>

#include "imagenet_sample.hpp"

using namespace vit;
using namespace vit::test;
namespace fs = std::filesystem;

namespace {

ModelSpec deit_spec() {
    const fs::path weights = shared() / "models/deit-tiny-imagenet/model.safetensors";
    REQUIRE_MESSAGE(fs::exists(weights), "DeiT-tiny weights not found at " << weights.string());
    return load_model_spec(source_dir() / "configs/deit_tiny_patch16_224.json", weights);
}

SampleRun classify_all(Precision precision, const std::vector<SampleRow>& rows) {
    const ModelSpec spec = deit_spec();
    VitModel model(spec, precision);
    PipelineOptions opt;
    opt.batch_size = 32;
    opt.decode_threads = 1;
    const SampleRun run = classify_sample(model, rows, opt);
    std::printf(
        "  deit_tiny %s on 1000 ImageNet samples: top-1 %.4f, top-5 %.4f, top-1 agreement with PIL pipeline %.4f\n",
        to_string(precision).c_str(), run.correct1 / 1000.0, run.correct5 / 1000.0, run.agree_pil / 1000.0);
    return run;
}

}  // namespace

TEST_CASE("DeiT-tiny logits on the first 20 ImageNet samples match PyTorch + PIL") {
    const ModelSpec spec = deit_spec();
    VitModel model(spec);
    const auto rows = read_pil_top1();
    SafetensorsFile ref(fixtures() / "deit_tiny/reference.safetensors");
    const float d = report("deit_tiny logits, 20 images", sample_logits(model, spec, rows, 20), tensor(ref, "logits"));
    CHECK(d <= 1e-3f);
}

TEST_CASE("DeiT-tiny accuracy on all 1000 samples and agreement with the PIL pipeline; int8 accuracy guard") {
    const auto rows = read_pil_top1();
    const SampleRun fp32 = classify_all(Precision::F32, rows);
    CHECK(std::abs(fp32.correct1 / 1000.0 - 0.795) <= 0.003 + 1e-9);
    CHECK(fp32.agree_pil / 1000.0 >= 0.995);

    const SampleRun int8 = classify_all(Precision::INT8, rows);
    int agree = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) agree += int8.top1[i] == fp32.top1[i];
    std::printf("  int8 top-1 agrees with fp32 on %.4f of images; accuracy change %+.1f points\n", agree / 1000.0,
                (int8.correct1 - fp32.correct1) / 10.0);
    CHECK(std::abs(int8.correct1 - fp32.correct1) <= 10);  // within 1.0 point

    // bf16 (activations in bf16 between the matmuls, attention included) where oneDNN runs it (AVX-512)
    SampleRun bf16;
    try {
        bf16 = classify_all(Precision::BF16, rows);
    } catch (const std::runtime_error& e) {
        MESSAGE("bf16 skipped: " << e.what());
        return;
    }
    agree = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) agree += bf16.top1[i] == fp32.top1[i];
    std::printf("  bf16 top-1 agrees with fp32 on %.4f of images; accuracy change %+.1f points\n", agree / 1000.0,
                (bf16.correct1 - fp32.correct1) / 10.0);
    CHECK(std::abs(bf16.correct1 - fp32.correct1) <= 5);  // within 0.5 point
    CHECK(agree >= 980);
}
