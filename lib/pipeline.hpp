// Streaming classification: inputs are decoded and preprocessed on a thread pool, batched in input order
// through a bounded window, run through the model, and handed back one result per input, in input order.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "inputs.hpp"
#include "model.hpp"

namespace vit {

struct Prediction {
    int index = 0;
    std::string label;
    float prob = 0;  // NaN for a class whose logit is NaN
};

// One record per input: either predictions or an error, never both.
struct ClassifyResult {
    std::uint64_t seq = 0;  // position in the input order
    std::string path;       // as given ("-" for stdin)
    std::vector<Prediction> top_k;
    std::vector<float> logits;  // all classes, when requested; the output row when rank is false
    std::string error;          // non-empty when the input could not be classified
    cv::Mat image;              // the decoded RGB image at its original size, with PipelineOptions::keep_image
    std::string warning;        // something odd about a classified input (NaN logits)
    bool ok() const { return error.empty(); }
};

struct PipelineOptions {
    int batch_size = 8;
    // Batches never straddle a multiple of `align` positions (0: no such cut). With align = the shard block, a
    // shard computes exactly the batches of the unsharded run (see kShardBlock).
    std::int64_t align = 0;
    int decode_threads = 1;
    bool background_decode = true;  // decoders at SCHED_IDLE priority from the first forward pass on (see Stream)
    int top_k = 5;
    bool keep_logits = false;
    int window = 0;               // max inputs decoded ahead of inference; 0 = 4 x batch_size
    std::int64_t max_pixels = 0;  // 0 = decoder default
    bool keep_image = false;      // hand each decoded image back in its result (vit explain draws on it)
    // > 0: when the source has been waiting this many milliseconds for its next input and every input claimed so
    // far is decoded, the inputs of the unfinished batch run at once as a partial batch (a slow pipe stays live).
    // A partial batch has another shape than the full one, so its logits may differ in the last bits (~1e-6) from
    // a run that did not stall; 0 keeps every batch whole.
    int stall_ms = 0;
    // Polled about every 100 ms (cheap, non-blocking): true asks the run to stop (a signal). It stops at the end of
    // the batch in flight: no new batch is started, inputs decoded ahead for later batches are dropped, and the
    // batch being gathered still takes its remaining inputs from the source, runs whole and is delivered. So a
    // cancelled run delivers whole batches, and a resumed run (the delivered inputs skipped) computes exactly the
    // batches an uninterrupted run would. Only when the next input of that batch does not arrive within
    // cancel_grace_ms (a silent pipe, a FIFO input with no writer) is the batch cut to what has arrived.
    std::function<bool()> cancelled;
    int cancel_grace_ms = 500;
    // Called once the run takes no more inputs (it has ended, stopped, failed or been cancelled), before it waits
    // for a decoder that is inside the source: a source that blocks waiting for input (a pipe) must return false
    // soon after. Called from the caller's thread; must not block.
    std::function<void()> no_more_input;
    // What runs on each batch of preprocessed images [B, C, S, S] (B >= 1, the decoded inputs of one batch, with
    // their input positions): writes output_dim floats per image to out. Unset: the model's forward (logits).
    // `vit embed` runs forward_features; `vit explain` the forward pass with an attention sink.
    std::function<void(const float* images, std::int64_t B, const std::uint64_t* positions, float* out)> run;
    int output_dim = 0;  // floats per image written by `run` (0: the model's classes)
    bool rank = true;    // rank the output as logits into top_k; false: hand it over as logits
};

// Supplies inputs one at a time with their position in the full input order (before any sharding or skipping)
// and, for an input known to be unusable, its error; returns false when there are no more. Called from one
// thread at a time; it may block waiting for input, but must return soon after PipelineOptions::no_more_input
// has been called (a source that does not wait for it: soon after `cancelled` turns true).
using InputSource = std::function<bool(SourceItem& item)>;
// Receives each result in input order; return false to stop the run early (e.g. --fail-fast).
using ResultSink = std::function<bool(ClassifyResult&&)>;

// Probabilities (softmax) of one row of logits and its top k, ties broken by lower index. NaN logits are ordered
// after every other class (by index among themselves), get probability NaN, and are left out of the softmax of
// the others; +Inf logits share probability 1. `warning` (if given) says what happened, or is cleared.
std::vector<Prediction> top_k(const float* logits, int num_classes, int k, const std::vector<std::string>& labels,
                              std::string* warning = nullptr);

// The batch an input position belongs to, and the last position of that batch: runs of `batch_size` positions,
// restarted at every multiple of `align` (when > 0).
std::uint64_t batch_index(std::uint64_t position, int batch_size, std::int64_t align);
std::uint64_t batch_last_position(std::uint64_t position, int batch_size, std::int64_t align);

// Decodes and preprocesses one input ("-" reads an encoded image from stdin) into `out` (model input size).
// Throws InputError naming the input.
// `decoded` (if given) receives the decoded RGB image at its original size.
void load_input(const std::string& path, const ModelSpec& spec, float* out, std::int64_t max_pixels = 0,
                cv::Mat* decoded = nullptr);

// Runs the whole stream. Returns the number of inputs that yielded an error record.
// The rows of each forward pass are the batch's decodable inputs in input order, and their results reach the sink
// in that order before the next batch runs: an attention sink set on the model sees them the same way.
// Memory stays bounded by the window however many inputs the source yields.
// A batch is the inputs of one batch_index() cell; it runs as soon as its last position has arrived (or the
// source has ended, or moved on to a later batch, or stalled: PipelineOptions::stall_ms). Cells never depend on
// timing, so equal batch_size and align give bit-identical logits per input.
// Errors: every result finished before a failure is delivered first; then the failure is thrown (a source
// error as InputError, out of memory or a thread that cannot start as std::runtime_error, a sink's own
// exception as is). No exception escapes a worker thread. On cancel or failure a decoder stuck in a system call
// (a FIFO input with no writer) is left behind, detached, after a grace period; it ends with the process.
std::uint64_t classify_stream(VitModel& model, const InputSource& source, const ResultSink& sink,
                              const PipelineOptions& opt);

}  // namespace vit
