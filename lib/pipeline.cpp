// Streaming classification: decode pool -> ordered bounded window -> batched inference -> ordered results.
#include "pipeline.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include <opencv2/core.hpp>

#include "errors.hpp"
#include "image.hpp"
#include "preprocess.hpp"

namespace vit {

std::vector<Prediction> top_k(const float* logits, int num_classes, int k, const std::vector<std::string>& labels) {
    k = std::max(0, std::min(k, num_classes));
    double mx = -INFINITY;
    for (int i = 0; i < num_classes; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
    double sum = 0;
    for (int i = 0; i < num_classes; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
    std::vector<int> idx(num_classes);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    std::vector<Prediction> out;
    for (int j = 0; j < k; ++j) {
        const int i = idx[j];
        out.push_back({i, i < static_cast<int>(labels.size()) ? labels[i] : std::to_string(i),
                       static_cast<float>(std::exp(static_cast<double>(logits[i]) - mx) / sum)});
    }
    return out;
}

void load_input(const std::string& path, const ModelSpec& spec, float* out, std::int64_t max_pixels,
                cv::Mat* decoded) {
    const std::size_t limit = max_pixels > 0 ? static_cast<std::size_t>(max_pixels) : kDefaultMaxPixels;
    cv::Mat rgb;
    rgb = path == "-" ? decode_image_stdin(limit) : decode_image_file(path, limit);
    try {
        preprocess(rgb, spec.preprocess, spec.model.in_chans, out);
    } catch (const std::exception& e) {
        throw InputError(path + ": cannot preprocess: " + e.what());
    }
    if (decoded) *decoded = std::move(rgb);
}

namespace {

struct Item {
    std::string path;
    std::uint64_t position = 0;
    std::vector<float> input;
    cv::Mat image;                 // with keep_image
    std::string error;
};

// Shared state of one run. Decoders claim inputs in order and may run ahead of inference by `window` inputs.
class Stream {
public:
    Stream(const InputSource& source, const ModelSpec& spec, const PipelineOptions& opt)
        : source_(source), spec_(spec), opt_(opt),
          window_(static_cast<std::uint64_t>(opt.window > 0 ? opt.window : 4 * std::max(1, opt.batch_size))),
          input_size_(static_cast<std::int64_t>(spec.model.in_chans) * spec.model.image_size * spec.model.image_size) {}

    void decoder() {
        if (opt_.background_decode) {
            // Decoding runs in the CPU time inference leaves idle (OpenMP barriers, the serial parts of a
            // forward pass, waits between batches): a third runnable thread at normal priority would preempt one
            // of the inference threads, and the whole OpenMP team then waits for it at every barrier.
            sched_param param{};
            param.sched_priority = 0;
            pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
        }
        for (;;) {
            std::string path;
            std::uint64_t seq, position = 0;
            {
                std::lock_guard<std::mutex> src_lock(source_mutex_);
                {
                    std::unique_lock<std::mutex> lk(m_);
                    space_cv_.wait(lk, [&] { return stop_ || exhausted_ || claimed_ < consumed_ + window_; });
                    if (stop_ || exhausted_) return;
                }
                bool got = false;
                std::string err;
                try {
                    got = source_(path, position);
                } catch (const std::exception& e) {
                    err = e.what();
                }
                std::lock_guard<std::mutex> lk(m_);
                if (!err.empty()) source_error_ = err;
                if (!got) {
                    exhausted_ = true;
                    ready_cv_.notify_all();
                    space_cv_.notify_all();
                    return;
                }
                seq = claimed_++;
                ++in_flight_;
            }
            Item item;
            item.path = path;
            item.position = position;
            try {
                item.input.resize(input_size_);
                load_input(path, spec_, item.input.data(), opt_.max_pixels, opt_.keep_image ? &item.image : nullptr);
            } catch (const std::exception& e) {
                // Records carry the path separately: drop it from the message when the decoder put it first.
                item.error = e.what();
                if (item.error.rfind(path + ": ", 0) == 0) item.error.erase(0, path.size() + 2);
                item.input = {};
            }
            std::lock_guard<std::mutex> lk(m_);
            ready_.emplace(seq, std::move(item));
            --in_flight_;
            ready_cv_.notify_all();
        }
    }

    // Next item in input order; false when the stream is over.
    bool next(Item& out, std::uint64_t& seq) {
        std::unique_lock<std::mutex> lk(m_);
        for (;;) {
            auto it = ready_.find(consumed_);
            if (it != ready_.end()) {
                out = std::move(it->second);
                ready_.erase(it);
                seq = consumed_++;
                space_cv_.notify_all();
                return true;
            }
            if ((exhausted_ || stop_) && in_flight_ == 0 && claimed_ == consumed_) return false;
            ready_cv_.wait(lk);
        }
    }

    void stop() {
        std::lock_guard<std::mutex> lk(m_);
        stop_ = true;
        space_cv_.notify_all();
        ready_cv_.notify_all();
    }

    std::string source_error() {
        std::lock_guard<std::mutex> lk(m_);
        return source_error_;
    }

    std::int64_t input_size() const { return input_size_; }

private:
    const InputSource& source_;
    const ModelSpec& spec_;
    const PipelineOptions& opt_;
    const std::uint64_t window_;
    const std::int64_t input_size_;

    std::mutex source_mutex_;
    std::mutex m_;
    std::condition_variable space_cv_, ready_cv_;
    std::map<std::uint64_t, Item> ready_;
    std::uint64_t claimed_ = 0, consumed_ = 0;
    int in_flight_ = 0;
    bool exhausted_ = false, stop_ = false;
    std::string source_error_;
};

}  // namespace

std::uint64_t classify_stream(VitModel& model, const InputSource& source, const ResultSink& sink,
                              const PipelineOptions& opt) {
    const ModelSpec& spec = model.spec();
    const int K = spec.model.num_classes;
    const int batch_size = std::max(1, opt.batch_size);
    Stream stream(source, spec, opt);
    std::vector<std::thread> decoders;
    for (int i = 0; i < std::max(1, opt.decode_threads); ++i) decoders.emplace_back([&] { stream.decoder(); });

    std::uint64_t failures = 0;
    std::vector<float> batch_input(static_cast<std::size_t>(batch_size) * stream.input_size());
    std::vector<float> logits(static_cast<std::size_t>(batch_size) * K);
    bool stopped = false;
    try {
        std::optional<std::pair<std::uint64_t, Item>> carry;   // first item of the next block
        for (bool more = true; more && !stopped;) {
            std::vector<std::pair<std::uint64_t, Item>> batch;
            int good = 0;
            for (;;) {
                std::pair<std::uint64_t, Item> next;
                if (carry) {
                    next = std::move(*carry);
                    carry.reset();
                } else if (!stream.next(next.second, next.first)) {
                    more = false;
                    break;
                }
                const std::uint64_t block = next.second.position / static_cast<std::uint64_t>(batch_size);
                if (!batch.empty() && block != batch.front().second.position / static_cast<std::uint64_t>(batch_size)) {
                    carry = std::move(next);
                    break;
                }
                Item& item = next.second;
                if (item.error.empty()) {
                    std::copy(item.input.begin(), item.input.end(), batch_input.begin() + good * stream.input_size());
                    item.input = {};
                    ++good;
                }
                batch.push_back(std::move(next));
            }
            if (good > 0) model.forward(batch_input.data(), good, logits.data());
            int g = 0;
            for (auto& [seq, item] : batch) {
                ClassifyResult r;
                r.seq = seq;
                r.path = std::move(item.path);
                if (!item.error.empty()) {
                    r.error = std::move(item.error);
                    ++failures;
                } else {
                    const float* row = logits.data() + static_cast<std::size_t>(g++) * K;
                    r.top_k = top_k(row, K, opt.top_k, spec.labels);
                    r.image = std::move(item.image);
                    if (opt.keep_logits) r.logits.assign(row, row + K);
                }
                if (!stopped && !sink(std::move(r))) stopped = true;
            }
        }
    } catch (...) {
        stream.stop();
        for (auto& t : decoders) t.join();
        throw;
    }
    stream.stop();
    for (auto& t : decoders) t.join();
    if (auto err = stream.source_error(); !err.empty()) throw InputError(err);
    return failures;
}

}  // namespace vit
