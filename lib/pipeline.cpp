// Streaming classification: decode pool -> ordered bounded window -> batched inference -> ordered results.
#include "pipeline.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <thread>

#include <opencv2/core.hpp>

#include "errors.hpp"
#include "image.hpp"
#include "preprocess.hpp"

namespace vit {

std::vector<Prediction> top_k(const float* logits, int num_classes, int k, const std::vector<std::string>& labels,
                              std::string* warning) {
    k = std::max(0, std::min(k, num_classes));
    int nans = 0, pos_inf = 0;
    double mx = -INFINITY;
    for (int i = 0; i < num_classes; ++i) {
        const float v = logits[i];
        if (std::isnan(v)) ++nans;
        else mx = std::max(mx, static_cast<double>(v));
        if (v == INFINITY) ++pos_inf;
    }
    const int finite_or_inf = num_classes - nans;
    // Softmax over the non-NaN logits; its limits where they are infinite: the +Inf classes share 1, and classes
    // that are all -Inf share 1 equally (all equal).
    std::vector<double> prob(static_cast<std::size_t>(num_classes), NAN);
    if (pos_inf > 0) {
        for (int i = 0; i < num_classes; ++i)
            if (!std::isnan(logits[i])) prob[i] = logits[i] == INFINITY ? 1.0 / pos_inf : 0.0;
    } else if (finite_or_inf > 0 && mx == -INFINITY) {
        for (int i = 0; i < num_classes; ++i)
            if (!std::isnan(logits[i])) prob[i] = 1.0 / finite_or_inf;
    } else if (finite_or_inf > 0) {
        double sum = 0;
        for (int i = 0; i < num_classes; ++i)
            if (!std::isnan(logits[i])) sum += std::exp(static_cast<double>(logits[i]) - mx);
        for (int i = 0; i < num_classes; ++i)
            if (!std::isnan(logits[i])) prob[i] = std::exp(static_cast<double>(logits[i]) - mx) / sum;
    }
    std::vector<int> idx(static_cast<std::size_t>(num_classes));
    std::iota(idx.begin(), idx.end(), 0);
    // A strict weak ordering even with NaN: (is NaN, -logit, index), NaN classes after all others.
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
        const bool na = std::isnan(logits[a]), nb = std::isnan(logits[b]);
        if (na != nb) return nb;
        if (na) return a < b;
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    std::vector<Prediction> out;
    for (int j = 0; j < k; ++j) {
        const int i = idx[j];
        out.push_back(
            {i, i < static_cast<int>(labels.size()) ? labels[i] : std::to_string(i), static_cast<float>(prob[i])});
    }
    if (warning) {
        warning->clear();
        if (nans > 0)
            *warning = std::to_string(nans) + " of " + std::to_string(num_classes) +
                       " logits are NaN: those classes are ranked last with probability NaN, the others' "
                       "probabilities are a softmax over the rest";
    }
    return out;
}

std::uint64_t batch_index(std::uint64_t position, int batch_size, std::int64_t align) {
    const auto b = static_cast<std::uint64_t>(std::max(1, batch_size));
    if (align <= 0) return position / b;
    const auto a = static_cast<std::uint64_t>(align);
    return (position / a) * ((a + b - 1) / b) + (position % a) / b;
}

std::uint64_t batch_last_position(std::uint64_t position, int batch_size, std::int64_t align) {
    const auto b = static_cast<std::uint64_t>(std::max(1, batch_size));
    if (align <= 0) return (position / b + 1) * b - 1;
    const auto a = static_cast<std::uint64_t>(align);
    const std::uint64_t block = position / a, off = position % a;
    return block * a + std::min((off / b + 1) * b, a) - 1;
}

void load_input(const std::string& path, const ModelSpec& spec, float* out, std::int64_t max_pixels, cv::Mat* decoded) {
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

using Clock = std::chrono::steady_clock;

struct Item {
    std::string path;
    std::uint64_t position = 0;
    std::vector<float> input;
    cv::Mat image;  // with keep_image
    std::string error;
};

enum class Next { kItem, kEnd, kStalled, kCancelled };

// Shared state of one run, owned jointly by the caller and the decoder threads (a decoder stuck in a system call
// may outlive the call; it then touches nothing but this object). Decoders claim inputs in order and may run
// ahead of inference by `window` inputs.
class Stream {
public:
    Stream(const InputSource& source, const ModelSpec& spec, const PipelineOptions& opt, int decoders)
        : source_(source), spec_(spec), opt_(opt),
          window_(static_cast<std::uint64_t>(opt.window > 0 ? opt.window : 4 * std::max(1, opt.batch_size))),
          input_size_(static_cast<std::int64_t>(spec.model.in_chans) * spec.model.image_size * spec.model.image_size),
          done_(static_cast<std::size_t>(decoders), 0) {}

    // A decoder thread's body: no exception leaves it (one that would is a fatal error of the run).
    void decoder(std::size_t index) {
        try {
            decode_loop();
        } catch (const std::bad_alloc&) {
            fail("out of memory in a decoder thread");
        } catch (const std::exception& e) {
            fail(std::string("decoder thread: ") + e.what());
        } catch (...) {
            fail("decoder thread: unknown error");
        }
        std::lock_guard<std::mutex> lk(m_);
        done_[index] = 1;
        done_cv_.notify_all();
    }

    // Next item in input order. `partial`: the caller holds inputs of an unfinished batch (a stall may cut it).
    // Once the run is cancelled: kCancelled between batches (nothing new is started); within a batch, items keep
    // coming until kCancelled after cancel_grace_ms without one (the caller then ends with the batch it holds).
    Next next(Item& out, std::uint64_t& seq, bool partial) {
        std::unique_lock<std::mutex> lk(m_);
        std::optional<Clock::time_point> give_up;  // when a cancelled run stops waiting for this item
        for (;;) {
            poll_cancel();
            if (cancel_seen_ && !partial) return Next::kCancelled;
            auto it = ready_.find(consumed_);
            if (it != ready_.end()) {
                out = std::move(it->second);
                ready_.erase(it);
                seq = consumed_++;
                space_cv_.notify_all();
                return Next::kItem;
            }
            if (!fatal_.empty()) return Next::kEnd;
            if ((exhausted_ || stop_) && in_flight_ == 0 && claimed_ == consumed_) return Next::kEnd;
            auto wait = std::chrono::milliseconds(100);
            if (cancel_seen_) {
                const auto now = Clock::now();
                if (!give_up) give_up = now + std::chrono::milliseconds(std::max(0, opt_.cancel_grace_ms));
                if (now >= *give_up) {
                    gave_up_ = true;
                    return Next::kCancelled;
                }
                wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(*give_up - now) +
                                          std::chrono::milliseconds(1));
            }
            if (partial && opt_.stall_ms > 0 && in_source_ && claimed_ == consumed_) {
                const auto waited = Clock::now() - source_since_;
                const auto limit = std::chrono::milliseconds(opt_.stall_ms);
                if (waited >= limit) return Next::kStalled;
                wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(limit - waited) +
                                          std::chrono::milliseconds(1));
            }
            ready_cv_.wait_for(lk, wait);
        }
    }

    void stop() {
        {
            std::lock_guard<std::mutex> lk(m_);
            stop_ = true;
            space_cv_.notify_all();
            ready_cv_.notify_all();
        }
        if (opt_.no_more_input) opt_.no_more_input();
    }

    // Stops the decoders and waits for them: all of them, or, after `grace`, those that are not stuck in a
    // decode; a decoder inside the source is always waited for (the source refers to the caller's state). A
    // cancelled run that already waited out its grace for a decoder does not wait that long again.
    // Returns which decoders have finished (they can be joined; the others must be detached).
    std::vector<char> finish(std::chrono::milliseconds grace) {
        stop();
        std::unique_lock<std::mutex> lk(m_);
        if (gave_up_) grace = std::min(grace, std::chrono::milliseconds(100));
        auto all_done = [&] { return std::all_of(done_.begin(), done_.end(), [](char d) { return d != 0; }); };
        done_cv_.wait_for(lk, grace, all_done);
        done_cv_.wait(lk, [&] { return !in_source_; });
        return done_;
    }

    std::exception_ptr source_error() {
        std::lock_guard<std::mutex> lk(m_);
        return source_error_;
    }
    std::string fatal_error() {
        std::lock_guard<std::mutex> lk(m_);
        return fatal_;
    }
    std::int64_t input_size() const { return input_size_; }

    // Whether the run has been asked to stop (polls `cancelled` once more).
    bool cancelled() {
        std::lock_guard<std::mutex> lk(m_);
        poll_cancel();
        return cancel_seen_;
    }

    // The first forward pass is about to run. With background_decode, the decoders now go to idle priority
    // (SCHED_IDLE) for good: from here on they decode in the CPU time inference leaves idle (OpenMP barriers, the
    // serial parts of a forward pass, waits between batches), since a third runnable thread at normal priority
    // would preempt one of the inference threads and the whole OpenMP team would wait for it at every barrier.
    // Until now nothing was inferring and the first batch waited for them: at idle priority, any other process
    // on the machine would have starved a one-image run. Lowering a thread's priority needs no privilege;
    // raising it again would (CAP_SYS_NICE), hence once.
    void inference_starts() {
        std::lock_guard<std::mutex> lk(m_);
        if (inferring_) return;
        inferring_ = true;
        if (!cancel_seen_)
            for (const pthread_t t : decoders_) set_policy(t, SCHED_IDLE);
    }

private:
    void decode_loop() {
        if (opt_.background_decode) {
            std::lock_guard<std::mutex> lk(m_);
            decoders_.push_back(pthread_self());
            if (inferring_ && !cancel_seen_) set_policy(pthread_self(), SCHED_IDLE);
        }
        for (;;) {
            SourceItem si;
            std::uint64_t seq = 0;
            {
                std::lock_guard<std::mutex> src_lock(source_mutex_);
                {
                    std::unique_lock<std::mutex> lk(m_);
                    space_cv_.wait(lk, [&] { return stop_ || exhausted_ || claimed_ < consumed_ + window_; });
                    if (stop_ || exhausted_) return;
                    in_source_ = true;
                    source_since_ = Clock::now();
                }
                bool got = false;
                std::exception_ptr err;
                try {
                    got = source_(si);
                } catch (...) {
                    err = std::current_exception();
                }
                std::lock_guard<std::mutex> lk(m_);
                in_source_ = false;
                done_cv_.notify_all();
                if (err) source_error_ = err;
                if (!got || err) {
                    exhausted_ = true;
                    ready_cv_.notify_all();
                    space_cv_.notify_all();
                    return;
                }
                seq = claimed_++;
                ++in_flight_;
            }
            Item item;
            item.path = std::move(si.path);
            item.position = si.position;
            item.error = std::move(si.error);
            if (item.error.empty()) {
                try {
                    item.input.resize(static_cast<std::size_t>(input_size_));
                    load_input(item.path, spec_, item.input.data(), opt_.max_pixels,
                               opt_.keep_image ? &item.image : nullptr);
                } catch (const std::bad_alloc&) {
                    item.error = "out of memory while decoding";
                } catch (const std::exception& e) {
                    // Records carry the path separately: drop it from the message when the decoder put it first.
                    item.error = e.what();
                    if (item.error.rfind(item.path + ": ", 0) == 0) item.error.erase(0, item.path.size() + 2);
                }
                if (!item.error.empty()) item.input = {}, item.image.release();
            }
            std::lock_guard<std::mutex> lk(m_);
            ready_.emplace(seq, std::move(item));
            --in_flight_;
            ready_cv_.notify_all();
        }
    }

    // With m_ held. Once cancelled, nothing more is inferred but the batch in flight, which may wait for the
    // decoders: they leave the idle priority (on a busy machine an idle-priority thread can wait seconds for a
    // CPU). Without the privilege to raise a thread's priority (CAP_SYS_NICE) they stay where they are.
    void poll_cancel() {
        if (cancel_seen_ || !opt_.cancelled || !opt_.cancelled()) return;
        cancel_seen_ = true;
        for (const pthread_t t : decoders_) set_policy(t, SCHED_OTHER);
    }

    static void set_policy(pthread_t t, int policy) {
        sched_param param{};
        param.sched_priority = 0;
        pthread_setschedparam(t, policy, &param);
    }

    void fail(const std::string& message) {
        std::lock_guard<std::mutex> lk(m_);
        if (fatal_.empty()) fatal_ = message;
        stop_ = true;
        space_cv_.notify_all();
        ready_cv_.notify_all();
    }

    const InputSource source_;  // copies: a detached decoder may outlive the caller's objects
    const ModelSpec spec_;
    const PipelineOptions opt_;
    const std::uint64_t window_;
    const std::int64_t input_size_;

    std::mutex source_mutex_;
    std::mutex m_;
    std::condition_variable space_cv_, ready_cv_, done_cv_;
    std::map<std::uint64_t, Item> ready_;
    std::uint64_t claimed_ = 0, consumed_ = 0;
    int in_flight_ = 0;
    bool exhausted_ = false, stop_ = false;
    bool in_source_ = false;
    bool cancel_seen_ = false, gave_up_ = false;  // the run was cancelled; a batch was cut by cancel_grace_ms
    std::vector<pthread_t> decoders_;             // with background_decode (joinable until finish())
    bool inferring_ = false;                      // inference_starts() was called
    Clock::time_point source_since_;
    std::exception_ptr source_error_;
    std::string fatal_;
    std::vector<char> done_;  // per decoder: its thread function has returned
};

// Owns the decoder threads: however classify_stream ends, they are stopped and joined (or, when stuck in a
// system call past the grace period, detached), so no joinable std::thread is ever destroyed.
class Decoders {
public:
    explicit Decoders(std::shared_ptr<Stream> stream) : stream_(std::move(stream)) {}
    ~Decoders() { finish(); }

    void start(int n) {
        threads_.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            try {
                auto s = stream_;
                const auto index = static_cast<std::size_t>(i);
                threads_.emplace_back([s, index] { s->decoder(index); });
            } catch (const std::system_error& e) {
                throw std::runtime_error("cannot start decoder thread " + std::to_string(i + 1) + " of " +
                                         std::to_string(n) + ": " + e.code().message());
            }
        }
    }

    void finish() {
        if (threads_.empty()) return;
        const auto done = stream_->finish(std::chrono::milliseconds(500));
        for (std::size_t i = 0; i < threads_.size(); ++i) {
            if (!threads_[i].joinable()) continue;
            if (i < done.size() && done[i]) threads_[i].join();
            else threads_[i].detach();
        }
        threads_.clear();
    }

private:
    std::shared_ptr<Stream> stream_;
    std::vector<std::thread> threads_;
};

}  // namespace

std::uint64_t classify_stream(VitModel& model, const InputSource& source, const ResultSink& sink,
                              const PipelineOptions& opt) {
    const ModelSpec& spec = model.spec();
    const bool custom = static_cast<bool>(opt.run);
    const int K = custom && opt.output_dim > 0 ? opt.output_dim : spec.model.num_classes;  // floats per image
    const int batch_size = std::max(1, opt.batch_size);
    const int n_decoders = std::max(1, opt.decode_threads);
    auto stream = std::make_shared<Stream>(source, spec, opt, n_decoders);
    Decoders decoders(stream);
    decoders.start(n_decoders);

    std::uint64_t failures = 0;
    std::vector<float> batch_input, logits;
    try {
        batch_input.resize(static_cast<std::size_t>(batch_size) * static_cast<std::size_t>(stream->input_size()));
        logits.resize(static_cast<std::size_t>(batch_size) * static_cast<std::size_t>(K));
    } catch (const std::bad_alloc&) {
        throw std::runtime_error(
            "out of memory: a batch of " + std::to_string(batch_size) + " inputs needs " +
            std::to_string((static_cast<std::size_t>(batch_size) * stream->input_size() * 4) >> 20) +
            " MiB for its input alone");
    }
    bool stopped = false, more = true, cancelled = false;
    std::optional<std::pair<std::uint64_t, Item>> carry;  // first item of the next batch
    while (more && !stopped && !cancelled) {
        std::vector<std::pair<std::uint64_t, Item>> batch;
        std::uint64_t cell = 0;
        int good = 0;
        std::vector<std::uint64_t> positions;  // of the decoded inputs, in batch order
        for (;;) {
            std::pair<std::uint64_t, Item> next;
            if (carry && stream->cancelled()) {
                cancelled = true;  // the next batch's first item: not started
                break;
            }
            if (carry) {
                next = std::move(*carry);
                carry.reset();
            } else {
                const Next got = stream->next(next.second, next.first, !batch.empty());
                if (got == Next::kEnd) more = false;
                if (got == Next::kCancelled) cancelled = true;
                if (got != Next::kItem) break;  // end, cancel or stall: run what is there
            }
            const std::uint64_t position = next.second.position;
            const std::uint64_t c = batch_index(position, batch_size, opt.align);
            if (!batch.empty() && c != cell) {
                carry = std::move(next);
                break;
            }
            cell = c;
            Item& item = next.second;
            if (item.error.empty()) {
                std::copy(item.input.begin(), item.input.end(),
                          batch_input.begin() + static_cast<std::ptrdiff_t>(good) * stream->input_size());
                item.input = {};
                positions.push_back(position);
                ++good;
            }
            batch.push_back(std::move(next));
            if (position == batch_last_position(position, batch_size, opt.align)) break;  // complete: run now
        }
        if (good > 0) {
            stream->inference_starts();
            try {
                if (custom) opt.run(batch_input.data(), good, positions.data(), logits.data());
                else model.forward(batch_input.data(), good, logits.data());
            } catch (const std::bad_alloc&) {
                throw std::runtime_error("out of memory running a batch of " + std::to_string(good) + " inputs");
            }
        }
        int g = 0;
        for (auto& [seq, item] : batch) {
            ClassifyResult r;
            r.seq = seq;
            r.path = std::move(item.path);
            if (!item.error.empty()) {
                r.error = std::move(item.error);
                ++failures;
            } else {
                const float* row = logits.data() + static_cast<std::size_t>(g++) * static_cast<std::size_t>(K);
                if (opt.rank) r.top_k = top_k(row, K, opt.top_k, spec.labels, &r.warning);
                r.image = std::move(item.image);
                if (opt.keep_logits || !opt.rank) r.logits.assign(row, row + K);
            }
            if (!stopped && !sink(std::move(r))) stopped = true;
        }
    }
    decoders.finish();
    if (const std::string fatal = stream->fatal_error(); !fatal.empty()) throw std::runtime_error(fatal);
    if (!stopped && !cancelled)
        if (auto err = stream->source_error()) std::rethrow_exception(err);
    return failures;
}

}  // namespace vit
