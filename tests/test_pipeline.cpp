// The streaming pipeline: top-k with NaN/Inf logits (a strict weak ordering, NaN last), the batch cells that make
// sharded and unsharded runs batch alike, the input list's shard parsing, how a cancelled run ends (whole
// batches; a batch cut only after the grace), and the decoders' scheduling priority.
#include <doctest/doctest.h>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

#include "config.hpp"
#include "inputs.hpp"
#include "pipeline.hpp"
#include "test_util.hpp"

using namespace vit;

TEST_CASE("top_k: plain softmax, ties by lower index, no warning") {
    const float l[4] = {1.0f, 3.0f, 3.0f, 0.0f};
    std::string w = "stale";
    const auto p = top_k(l, 4, 4, {"a", "b", "c", "d"}, &w);
    REQUIRE(p.size() == 4);
    CHECK(p[0].index == 1);
    CHECK(p[1].index == 2);
    CHECK(p[2].index == 0);
    CHECK(p[3].index == 3);
    const double sum = std::exp(1.0) + 2 * std::exp(3.0) + 1.0;
    CHECK(p[0].prob == doctest::Approx(std::exp(3.0) / sum));
    CHECK(p[0].label == "b");
    CHECK(w.empty());
}

TEST_CASE("top_k: NaN logits are ranked last by index, probability NaN, the rest a softmax of their own") {
    const float nan = NAN;
    const float l[6] = {nan, 2.0f, nan, 1.0f, nan, 0.5f};
    for (int k = 1; k <= 6; ++k) {
        std::string w;
        const auto p = top_k(l, 6, k, {}, &w);
        REQUIRE(p.size() == static_cast<std::size_t>(k));
        const int order[6] = {1, 3, 5, 0, 2, 4};
        for (int j = 0; j < k; ++j) CHECK(p[j].index == order[j]);
        CHECK(w.find("3 of 6 logits are NaN") == 0);
    }
    const auto p = top_k(l, 6, 6, {});
    const double sum = std::exp(0.0) + std::exp(-1.0) + std::exp(-1.5);
    CHECK(p[0].prob == doctest::Approx(1.0 / sum));
    CHECK(p[2].prob == doctest::Approx(std::exp(-1.5) / sum));
    CHECK(std::isnan(p[3].prob));
    CHECK(p[3].label == "0");
}

TEST_CASE("top_k: many NaN among many classes is deterministic (a strict weak ordering for partial_sort)") {
    std::vector<float> l(1000);
    for (int i = 0; i < 1000; ++i) l[i] = i % 3 == 0 ? NAN : static_cast<float>((i * 7919) % 101);
    const auto a = top_k(l.data(), 1000, 1000, {});
    const auto b = top_k(l.data(), 1000, 1000, {});
    for (std::size_t j = 0; j < a.size(); ++j) CHECK(a[j].index == b[j].index);
    for (std::size_t j = 1; j < a.size(); ++j) {
        const bool na = std::isnan(l[a[j - 1].index]), nb = std::isnan(l[a[j].index]);
        CHECK((!na || nb));  // never a number after a NaN
        if (na && nb) CHECK(a[j - 1].index < a[j].index);
        if (!na && !nb) CHECK(l[a[j - 1].index] >= l[a[j].index]);
    }
}

TEST_CASE("top_k: all NaN, +Inf and -Inf logits") {
    const float nan = NAN, inf = INFINITY;
    const float all_nan[3] = {nan, nan, nan};
    std::string w;
    auto p = top_k(all_nan, 3, 2, {}, &w);
    CHECK(p[0].index == 0);
    CHECK(p[1].index == 1);
    CHECK(std::isnan(p[0].prob));
    CHECK(w.find("3 of 3") == 0);
    const float pinf[4] = {inf, 1.0f, inf, nan};
    p = top_k(pinf, 4, 4, {});
    CHECK(p[0].index == 0);
    CHECK(p[1].index == 2);
    CHECK(p[0].prob == 0.5f);
    CHECK(p[2].prob == 0.0f);
    CHECK(std::isnan(p[3].prob));
    const float ninf[2] = {-inf, -inf};
    p = top_k(ninf, 2, 2, {});
    CHECK(p[0].prob == 0.5f);
}

TEST_CASE("batch cells: runs of batch_size restarted at every align boundary") {
    // align 10, batch 4: cells [0-3] [4-7] [8-9] [10-13] [14-17] [18-19] ...
    const int cell_of[20] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5};
    const int last_of[20] = {3, 3, 3, 3, 7, 7, 7, 7, 9, 9, 13, 13, 13, 13, 17, 17, 17, 17, 19, 19};
    for (int p = 0; p < 20; ++p) {
        CHECK(batch_index(static_cast<std::uint64_t>(p), 4, 10) == static_cast<std::uint64_t>(cell_of[p]));
        CHECK(batch_last_position(static_cast<std::uint64_t>(p), 4, 10) == static_cast<std::uint64_t>(last_of[p]));
    }
    CHECK(batch_index(9, 4, 0) == 2);
    CHECK(batch_last_position(9, 4, 0) == 11);
    CHECK(batch_index(300, 512, kShardBlock) == 1);  // a batch larger than the block is cut at the block
}

TEST_CASE("parse_shard: K/N with decimal digits only, whatever the bytes") {
    std::int64_t k = -1, n = -1;
    parse_shard("3/8", k, n);
    CHECK(k == 3);
    CHECK(n == 8);
    for (const char* bad : {"8/8", "1/0", "/2", "1/", "a/2", "1/2/3", "-1/2", " 1/2", "1/2 ", "\xd9\xa1/2", "\xff/2",
                            "1/\xb2", "1000000000000/2"})
        CHECK_THROWS_AS(parse_shard(bad, k, n), std::invalid_argument);
}

namespace {

// The built-in Fashion-MNIST model and its eight sample images, handed out in turn as positions 0, 1, 2, ...
struct CancelRun {
    VitModel model{load_model_dir(test::source_dir() / "models" / "fashion-vit")};
    std::vector<std::string> images;
    std::atomic<bool> cancel{false}, released{false};
    std::vector<std::uint64_t> delivered;
    PipelineOptions po;

    CancelRun() {
        for (const char* n : {"ankle_boot", "bag", "dress", "pullover", "sandal", "sneaker", "trouser", "tshirt_top"})
            images.push_back((test::source_dir() / "samples" / "fashion" / (std::string(n) + ".png")).string());
        po.batch_size = 4;
        po.decode_threads = 1;
        po.background_decode = false;  // a busy machine would starve an idle-priority decoder past the pauses below
        po.cancelled = [this] { return cancel.load(); };
        po.no_more_input = [this] { released = true; };
    }
    SourceItem item(std::uint64_t position) const { return {images[position % images.size()], position, {}}; }
    void run(const InputSource& source, const std::function<void(std::uint64_t)>& on_result = {}) {
        classify_stream(
            model, source,
            [&](ClassifyResult&& r) {
                CHECK(r.ok());
                delivered.push_back(r.seq);
                if (on_result) on_result(r.seq);
                return true;
            },
            po);
    }
};

}  // namespace

TEST_CASE("cancel between batches: the batch being delivered is the last, inputs decoded ahead are dropped") {
    CancelRun t;
    std::uint64_t next = 0;
    t.run([&](SourceItem& it) { return next < 40 && (it = t.item(next++), true); },
          [&](std::uint64_t seq) {
              if (seq == 1) t.cancel = true;  // during the first batch's delivery
          });
    CHECK(t.delivered == std::vector<std::uint64_t>{0, 1, 2, 3});
    CHECK(t.released);
}

TEST_CASE("cancel before the first input: nothing is run") {
    CancelRun t;
    t.cancel = true;
    std::uint64_t next = 0;
    t.run([&](SourceItem& it) { return next < 40 && (it = t.item(next++), true); });
    CHECK(t.delivered.empty());
}

TEST_CASE("cancel inside a batch: its remaining inputs are still taken, it runs whole, the next is not started") {
    CancelRun t;
    // Positions 0-5 at once; position 6, the third input of the batch 4-7, after a pause in which the batch 0-3
    // runs and 4 and 5 are taken (the consumer then waits inside the batch); the signal comes 50 ms before 6 and 7
    // do (the grace is 500 ms); later inputs come at once.
    std::uint64_t next = 0;
    t.run([&](SourceItem& it) {
        if (next >= 40) return false;
        if (next == 6) std::this_thread::sleep_for(std::chrono::milliseconds(1000));
        if (next == 6 || next == 7) {
            t.cancel = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        it = t.item(next++);
        return true;
    });
    CHECK(t.delivered == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("cancel inside a batch whose next input never comes: cut after the grace, the source released") {
    CancelRun t;
    t.po.cancel_grace_ms = 300;
    std::uint64_t next = 0;
    std::chrono::steady_clock::time_point signalled{};
    t.run([&](SourceItem& it) {
        if (next < 6) return it = t.item(next++), true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // the consumer waits inside the batch 4-7
        signalled = std::chrono::steady_clock::now();
        t.cancel = true;
        while (!t.released) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a silent pipe
        return false;
    });
    const auto waited = std::chrono::steady_clock::now() - signalled;
    CHECK(t.delivered == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5});
    CHECK(waited >= std::chrono::milliseconds(300));
    CHECK(waited < std::chrono::milliseconds(5000));  // bounded: it did not wait for the input that never came
}

TEST_CASE("decoders: normal priority until the first forward pass, idle priority (SCHED_IDLE) from then on") {
    for (const bool background : {true, false}) {
        CAPTURE(background);
        CancelRun t;  // the Fashion-MNIST model and its samples; no cancel here
        t.po.batch_size = 2;
        t.po.window = 2;  // the decoder waits for the consumer, so it also decodes after forward passes
        t.po.background_decode = background;
        std::atomic<bool> delivered{false};
        std::vector<std::pair<bool, int>> calls;  // (a result was delivered before the call, the caller's policy)
        std::uint64_t next = 0;
        t.run(
            [&](SourceItem& it) {
                if (next >= 24) return false;
                const bool after = delivered.load();  // read before the policy: a forward pass lowered it already
                calls.emplace_back(after, sched_getscheduler(0));
                it = t.item(next++);
                return true;
            },
            [&](std::uint64_t) { delivered = true; });
        REQUIRE(t.delivered.size() == 24);
        REQUIRE(calls.size() >= 24);
        CHECK(calls.front() == std::make_pair(false, static_cast<int>(SCHED_OTHER)));
        int after = 0;
        for (const auto& [seen, policy] : calls) {
            if (!seen) continue;
            ++after;
            CHECK(policy == (background ? SCHED_IDLE : SCHED_OTHER));
        }
        CHECK(after > 10);
    }
}
