// `vit classify`: classify files, folders and path lists; stream one record per input in input order.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <vector>
#include <iostream>
#include <memory>
#include <set>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "atomic_output.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "inputs.hpp"
#include "output.hpp"
#include "pipeline.hpp"
#include "progress.hpp"

namespace vit::app {

namespace {

struct ClassifyOptions {
    ModelOptions model;
    std::vector<std::string> inputs;
    int top_k = 5;
    std::string format = "text";
    bool logits = false;
    int batch_size = 8;
    int decode_threads = 0;
    bool recursive = false;
    std::string ext;
    std::string files_from;
    bool null_sep = false;
    std::string output;
    std::string shard;
    std::int64_t shard_block = kShardBlock;
    std::string skip_done;
    bool fail_fast = false;
    bool progress_on = false, progress_off = false;
    std::int64_t max_pixels = 100'000'000;
};

volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_signal(int sig) {
    g_interrupted = 1;
    std::signal(sig, SIG_DFL);   // a second signal ends the process at once
}

// Paths already recorded in an earlier jsonl result.
std::set<std::string> read_done(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file + ": cannot open --skip-done file");
    std::set<std::string> done;
    std::string line;
    std::size_t lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("path") || !j["path"].is_string()) {
            warn(file + ":" + std::to_string(lineno) + ": not a jsonl result record, ignored");
            continue;
        }
        done.insert(j["path"].get<std::string>());
    }
    return done;
}

int run_classify(const ClassifyOptions& o) {
    if (o.inputs.empty() && o.files_from.empty())
        throw std::runtime_error("no inputs: give image files or folders, '-' for stdin, or --files-from");
    InputOptions in;
    in.recursive = o.recursive;
    if (!o.ext.empty()) in.extensions = parse_extensions(o.ext);
    if (!o.shard.empty()) parse_shard(o.shard, in.shard_index, in.shard_count);
    in.shard_block = o.shard_block;
    std::set<std::string> done;
    if (!o.skip_done.empty()) {
        done = read_done(o.skip_done);
        in.skip = &done;
    }
    in.list = o.files_from;
    in.list_delim = o.null_sep ? '\0' : '\n';
    // The position of the last input handed out; a signal ends a wait for the list only between batches.
    // Written by the source (a decoder thread), read by the pipeline's polls: atomic, -1 before the first input.
    std::atomic<std::int64_t> last_pos{-1};
    const auto batch_done = [&] {
        const std::int64_t p = last_pos.load();
        if (p < 0) return true;
        const auto u = static_cast<std::uint64_t>(p);
        return u == batch_last_position(u, o.batch_size, in.shard_block);
    };
    in.cancelled = [&] { return g_interrupted != 0 && batch_done(); };
    InputList inputs(o.inputs, in);
    inputs.warn = [](const std::string& m) { warn(m); };

    auto model = load_model(o.model);   // model problems are fatal before any output is written

    // With no streamed list the inputs are enumerated up front, so the progress bar knows the total.
    std::vector<SourceItem> all;
    std::int64_t total = -1;
    if (o.files_from.empty()) {
        SourceItem item;
        while (inputs.next(item)) all.push_back(item);
        total = static_cast<std::int64_t>(all.size());
    }
    std::size_t next = 0;
    // After SIGINT/SIGTERM the inputs of the batch in flight are still handed out, so every batch written is
    // whole: a resumed run (--skip-done) then batches its inputs exactly as an uninterrupted run would, and the
    // concatenated results equal the uninterrupted run's bit for bit (the logits depend on the batch's shape).
    InputSource source = [&](SourceItem& item) {
        if (g_interrupted && batch_done()) return false;
        const bool got = o.files_from.empty() ? next < all.size() && (item = all[next++], true) : inputs.next(item);
        if (!got) return false;
        const std::int64_t p = last_pos.load();
        if (g_interrupted && p >= 0 &&
            batch_index(item.position, o.batch_size, in.shard_block) !=
                batch_index(static_cast<std::uint64_t>(p), o.batch_size, in.shard_block))
            return false;
        last_pos = static_cast<std::int64_t>(item.position);
        return true;
    };

    std::unique_ptr<AtomicOutput> file;
    if (!o.output.empty()) file = std::make_unique<AtomicOutput>(o.output);
    std::ostream& out = file ? file->stream() : std::cout;
    auto writer = make_writer(o.format, out, o.top_k, o.logits);
    Progress progress(o.progress_on ? "on" : o.progress_off ? "off" : "auto", total);

    PipelineOptions po;
    po.batch_size = o.batch_size;
    po.align = in.shard_block;
    po.stall_ms = inputs.list_may_stall() ? 250 : 0;
    // Once an input is handed out, a signal ends the stream through the source (at the end of the batch in flight,
    // so every claimed batch is whole); the pipeline itself stops at once only before the first input.
    po.cancelled = [&] { return g_interrupted != 0 && last_pos.load() < 0; };
    po.top_k = o.top_k;
    po.keep_logits = o.logits;
    po.max_pixels = o.max_pixels;
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // Decoders run at idle priority in the gaps inference leaves (see PipelineOptions::background_decode), so
    // one per core does not oversubscribe the inference threads.
    po.decode_threads = o.decode_threads > 0 ? o.decode_threads : cores;

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::int64_t n = 0, failed = 0;
    bool first_error_stop = false;
    writer->begin();
    classify_stream(*model, source, [&](ClassifyResult&& r) {
        writer->write(r);
        ++n;
        if (!r.ok()) {
            ++failed;
            if (o.fail_fast) {
                warn("stopping at the first bad input (--fail-fast): " + r.error);
                first_error_stop = true;
                return false;
            }
        }
        progress.tick(n, failed);
        return true;
    }, po);
    writer->end();
    progress.finish();
    if (file) file->commit();
    if (g_interrupted) {
        warn("interrupted: " + std::to_string(n) + " inputs written");
        return kFatal;
    }
    (void)first_error_stop;
    return failed ? kSomeInputsFailed : kOk;
}

}  // namespace

void setup_classify(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<ClassifyOptions>();
    auto* sub = app.add_subcommand("classify", "Classify images: files, folders, '-' (stdin) or --files-from lists");
    opt->model.add_to(*sub);
    sub->add_option("inputs", opt->inputs, "Image files or folders; '-' reads one encoded image from stdin");
    sub->add_option("-k,--top-k", opt->top_k, "Number of classes reported per image")->check(CLI::Range(1, 1000000))->capture_default_str();
    sub->add_option("-f,--format", opt->format, "Output format")
        ->check(CLI::IsMember({"text", "json", "jsonl", "csv", "tsv"}))->capture_default_str();
    sub->add_flag("--logits", opt->logits, "Add the raw logits of all classes to each record");
    sub->add_option("-b,--batch-size", opt->batch_size, "Images per forward pass")->check(CLI::Range(1, 4096))->capture_default_str();
    sub->add_option("--decode-threads", opt->decode_threads, "Decode/preprocess threads, run at idle priority (0 = one per core)")
        ->check(CLI::NonNegativeNumber);
    sub->add_flag("-r,--recursive", opt->recursive, "Descend into sub-folders");
    sub->add_option("--ext", opt->ext, "Comma-separated extensions picked from folders (default: common image types)");
    sub->add_option("--files-from", opt->files_from, "Read input paths from FILE ('-' = stdin), one per line");
    sub->add_flag("-0,--null", opt->null_sep, "--files-from paths are NUL-separated (find -print0)");
    sub->add_option("-o,--output", opt->output, "Write results to FILE (atomically: temp file + rename)");
    sub->add_option("--shard", opt->shard, "Process only shard K of N (K/N, 0-based): the blocks of --shard-block inputs whose index % N == K");
    sub->add_option("--shard-block", opt->shard_block,
                    "Inputs per shard block; batches never straddle a block, so every run cuts the same batches")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))->capture_default_str();
    sub->add_option("--skip-done", opt->skip_done, "Skip inputs that have a record in this earlier jsonl result");
    sub->add_flag("--fail-fast", opt->fail_fast, "Stop at the first input that cannot be classified");
    auto* pon = sub->add_flag("--progress", opt->progress_on, "Always show the progress bar on stderr");
    auto* poff = sub->add_flag("--no-progress", opt->progress_off, "Never show the progress bar");
    pon->excludes(poff);
    sub->add_option("--max-pixels", opt->max_pixels, "Reject images with more pixels than this (checked before decoding)")
        ->check(CLI::PositiveNumber)->capture_default_str();
    sub->callback([opt, sub, &run] {
        // Nothing to classify and nobody piping into it: show how to call it rather than wait on the terminal.
        if (opt->inputs.empty() && opt->files_from.empty() && ::isatty(STDIN_FILENO))
            run = [sub] { return std::cerr << sub->help("vit"), kFatal; };
        else
            run = [opt] { return run_classify(*opt); };
    });
}

}  // namespace vit::app
