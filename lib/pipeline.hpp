// Streaming classification: inputs are decoded and preprocessed on a thread pool, batched in input order
// through a bounded window, run through the model, and handed back one result per input, in input order.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "model.hpp"

namespace vit {

struct Prediction {
    int index = 0;
    std::string label;
    float prob = 0;
};

// One record per input: either predictions or an error, never both.
struct ClassifyResult {
    std::uint64_t seq = 0;              // position in the input order
    std::string path;                   // as given ("-" for stdin)
    std::vector<Prediction> top_k;
    std::vector<float> logits;          // all classes, when requested
    std::string error;                  // non-empty when the input could not be classified
    cv::Mat image;                      // the decoded RGB image at its original size, with PipelineOptions::keep_image
    bool ok() const { return error.empty(); }
};

struct PipelineOptions {
    int batch_size = 8;
    int decode_threads = 1;
    bool background_decode = true;      // decoders at SCHED_IDLE priority, so they never take cores from inference
    int top_k = 5;
    bool keep_logits = false;
    int window = 0;                     // max inputs decoded ahead of inference; 0 = 4 x batch_size
    std::int64_t max_pixels = 0;        // 0 = decoder default
    bool keep_image = false;            // hand each decoded image back in its result (vit explain draws on it)
};

// Supplies input paths one at a time with their position in the full input order (before any sharding or
// skipping); returns false when there are no more. Called from one thread at a time.
using InputSource = std::function<bool(std::string& path, std::uint64_t& position)>;
// Receives each result in input order; return false to stop the run early (e.g. --fail-fast).
using ResultSink = std::function<bool(ClassifyResult&&)>;

// Probabilities (softmax) of one row of logits and its top k, ties broken by lower index.
std::vector<Prediction> top_k(const float* logits, int num_classes, int k, const std::vector<std::string>& labels);

// Decodes and preprocesses one input ("-" reads an encoded image from stdin) into `out` (model input size).
// Throws InputError naming the input.
// `decoded` (if given) receives the decoded RGB image at its original size.
void load_input(const std::string& path, const ModelSpec& spec, float* out, std::int64_t max_pixels = 0,
                cv::Mat* decoded = nullptr);

// Runs the whole stream. Returns the number of inputs that yielded an error record.
// The rows of each forward pass are the batch's decodable inputs in input order, and their results reach the sink
// in that order before the next batch runs: an attention sink set on the model sees them the same way.
// Memory stays bounded by the window however many inputs the source yields.
// Batches are the inputs whose positions fall in the same block [k*batch_size, (k+1)*batch_size), never cut by
// timing: the logits of an input depend only on its block (oneDNN's results vary in the last bits with the batch
// shape), so a sharded run that takes whole blocks reproduces the unsharded run bit for bit.
std::uint64_t classify_stream(VitModel& model, const InputSource& source, const ResultSink& sink,
                              const PipelineOptions& opt);

}  // namespace vit
