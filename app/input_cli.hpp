// The input side that classify, explain and embed share: the options (what to read, how to batch and decode it,
// what a bad input does) and one run's setup from them — the standard streams checked, signal handlers installed,
// --output opened first (so it is never read as an input), --skip-done read, the inputs listed and the pipeline
// options set.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "atomic_output.hpp"
#include "inputs.hpp"
#include "pipeline.hpp"

namespace vit::app {

struct InputCliOptions {
    std::vector<std::string> inputs;
    int batch_size = 8;
    int decode_threads = 0;  // 0 = one per core
    bool recursive = false;
    std::string ext;
    std::string files_from;
    bool null_sep = false;
    int batch_wait_ms = 250;
    std::string output;
    bool append = false;
    std::string shard;
    std::int64_t shard_block = kShardBlock;
    std::string skip_done;
    bool fail_fast = false;
    bool progress_on = false, progress_off = false;
    std::int64_t max_pixels = 100'000'000;
    std::string never_set;  // see "after_double_dash" in add_input_options
};

// What a subcommand's input options say and which it offers.
struct InputCliFeatures {
    std::string verb;         // "classified": in --fail-fast's help
    std::string records;      // "results", "records": in --output's help
    bool resumable = true;    // --append, --shard, --shard-block, --skip-done, --batch-wait
    std::string done_record;  // --skip-done's help: "a record", "an embedding"
};

// Adds the positional inputs and the input options to `sub` (after the subcommand's own options).
void add_input_options(CLI::App& sub, InputCliOptions& o, const InputCliFeatures& f);

// Nothing to read and nobody piping into it: the subcommand's help instead of waiting on the terminal.
bool wants_help(const InputCliOptions& o);

// One run's input side. The constructor checks the options against the standard streams, installs the interrupt
// handlers, opens --output (refusing it as --files-from, --skip-done or an input), reads --skip-done (the paths of
// the lines `is_done` accepts; every record when empty) and opens the input list; it throws std::runtime_error
// naming the problem. Load the model after it, then call list_inputs() and stream().
class InputRun {
public:
    using DoneFilter = std::function<bool(const std::string& line)>;
    explicit InputRun(const InputCliOptions& o, const DoneFilter& is_done = {});

    // The --output file (null: stdout), its descriptor and its name for messages.
    AtomicOutput* file() { return file_.get(); }
    int out_fd() const;
    std::string out_name() const;

    // Lists the inputs (call after loading the model). Without a streamed --files-from list they are listed up
    // front, so the progress bar knows their number.
    void list_inputs();

    // Batch size, shard alignment, --batch-wait, --max-pixels, decode threads, the interrupt check and the end of
    // a list's wait once the pipeline takes no more inputs.
    PipelineOptions pipeline() const;

    // Streams the inputs through the model with `po`, handing each result to `write` in input order; counts the
    // failures, stops at the first with --fail-fast and draws the progress bar. What is finished is kept whatever
    // ends the run: `close_off` (records closed, --output committed) runs at the end, and after an exception too,
    // unless `output_failed()` says nothing more can be written or an input turned out to be the output file.
    // Returns the exit code: kFatal when interrupted, kSomeInputsFailed when an input failed, else kOk.
    int stream(VitModel& model, const PipelineOptions& po, const std::function<void(ClassifyResult&)>& write,
               const std::function<void()>& close_off, const std::function<bool()>& output_failed);

private:
    const InputCliOptions& o_;
    std::unique_ptr<AtomicOutput> file_;
    std::set<std::string> done_;
    std::unique_ptr<InputList> list_;
    std::vector<SourceItem> all_;
    std::size_t next_ = 0;
    std::int64_t total_ = -1;  // -1: streamed, unknown
    InputSource source_;
    // Set by the pipeline once it takes no more inputs (see PipelineOptions::no_more_input): ends a list's wait.
    std::shared_ptr<std::atomic<bool>> no_more_input_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace vit::app
