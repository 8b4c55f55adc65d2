// `vit classify`: classify files, folders and path lists; stream one record per input in input order.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "atomic_output.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "inputs.hpp"
#include "output.hpp"
#include "pipeline.hpp"
#include "process.hpp"
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
    bool append = false;
    std::string shard;
    std::int64_t shard_block = kShardBlock;
    std::string skip_done;
    bool fail_fast = false;
    bool progress_on = false, progress_off = false;
    std::int64_t max_pixels = 100'000'000;
    int batch_wait_ms = 250;
    std::string never_set;  // see "after_double_dash" in setup_classify
};

// How long a partial batch waits for more piped input before it runs (PipelineOptions::stall_ms).
constexpr int kMaxBatchWaitMs = 3'600'000;

std::string errno_text(int err) {
    if (err == ENOENT) return "no such file";
    if (err == EACCES) return "permission denied";
    return std::strerror(err);
}

// Paths already recorded in an earlier jsonl result (surrogate escapes decoded, so any file name matches).
std::set<std::string> read_done(const std::string& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw std::runtime_error(file + ": cannot open the --skip-done file: " + errno_text(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const bool dir = S_ISDIR(st.st_mode);
        ::close(fd);
        throw std::runtime_error(file +
                                 (dir ? ": --skip-done is a directory, expected an earlier jsonl result"
                                      : ": --skip-done is not a regular file, expected an earlier jsonl result"));
    }
    std::string data;
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            throw std::runtime_error(file + ": read error in the --skip-done file: " + errno_text(err));
        }
        if (n == 0) break;
        data.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    std::set<std::string> done;
    std::size_t lineno = 0, start = 0;
    while (start < data.size()) {
        std::size_t end = data.find('\n', start);
        if (end == std::string::npos) end = data.size();
        const std::string line = data.substr(start, end - start);
        start = end + 1;
        ++lineno;
        if (line.empty()) continue;
        std::string path;
        if (!record_path(line, path)) {
            warn(file + ":" + std::to_string(lineno) + ": not a jsonl result record, ignored");
            continue;
        }
        done.insert(path);
    }
    return done;
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> file_id(const std::string& path) {
    struct stat st {};
    if (path.empty() || path == "-" || ::stat(path.c_str(), &st) != 0) return std::nullopt;
    return std::make_pair(static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino));
}

int run_classify(const ClassifyOptions& o) {
    const int closed = guard_standard_descriptors();
    install_interrupt_handlers();
    if (o.inputs.empty() && o.files_from.empty())
        throw std::runtime_error("no inputs: give image files or folders, '-' for stdin, or --files-from");
    const auto stdin_uses = std::count(o.inputs.begin(), o.inputs.end(), "-") + (o.files_from == "-" ? 1 : 0);
    if (o.files_from == "-" && stdin_uses > 1)
        throw std::runtime_error(
            "stdin cannot be both the --files-from list and an image ('-'): give the image as a file");
    if (stdin_uses > 1) throw std::runtime_error("'-' (an image on stdin) can be given only once");
    if (stdin_uses > 0 && (closed & 1)) throw std::runtime_error("stdin is closed, but '-' or --files-from - reads it");
    if (o.output.empty() && (closed & 2))
        throw std::runtime_error("stdout is closed: nowhere to write the results (give -o FILE)");
    if (o.append && o.output.empty()) throw std::runtime_error("--append needs -o FILE");
    if (o.append && o.format == "json")
        throw std::runtime_error("--append cannot add to a --format json array: use jsonl, csv, tsv or text");

    InputOptions in;
    in.recursive = o.recursive;
    if (!o.ext.empty()) in.extensions = parse_extensions(o.ext);
    if (!o.shard.empty()) parse_shard(o.shard, in.shard_index, in.shard_count);
    in.shard_block = o.shard_block;

    // The output first: what it replaces must not be read, neither as an input nor as a list.
    std::unique_ptr<AtomicOutput> file;
    if (!o.output.empty()) file = std::make_unique<AtomicOutput>(o.output, o.append);
    if (file && file->replaces()) {
        const auto out_id = *file->replaces();
        if (file_id(o.files_from) == out_id)
            throw std::runtime_error(o.output + ": --output is also the --files-from list (it would be overwritten)");
        if (!o.append && file_id(o.skip_done) == out_id)
            throw std::runtime_error(o.output +
                                     ": --output is also the --skip-done file: its records would be lost "
                                     "(--append adds the new records after them)");
        in.refuse.push_back(
            {out_id.first, out_id.second, "is also the --output file (refusing to overwrite an input)"});
    }
    std::set<std::string> done;
    if (!o.skip_done.empty()) {
        done = read_done(o.skip_done);
        in.skip = &done;
    }
    in.list = o.files_from;
    in.list_delim = o.null_sep ? '\0' : '\n';
    // A signal ends the run through the pipeline (PipelineOptions::cancelled): it finishes the batch in flight,
    // taking that batch's remaining inputs from the list, and then says it takes no more; only then does a wait
    // for the list (a pipe) give up.
    std::atomic<bool> no_more_input{false};
    in.cancelled = [&] { return no_more_input.load(); };
    InputList inputs(o.inputs, in);
    inputs.warn = [](const std::string& m) { warn(text_field(m)); };

    auto model = load_model(o.model);  // model problems are fatal before any output is written

    // With no streamed list the inputs are enumerated up front, so the progress bar knows the total.
    std::vector<SourceItem> all;
    std::int64_t total = -1;
    if (o.files_from.empty()) {
        SourceItem item;
        while (inputs.next(item)) all.push_back(item);
        total = static_cast<std::int64_t>(all.size());
    }
    std::size_t next = 0;
    // No check for a signal here: after SIGINT/SIGTERM/SIGHUP the pipeline still takes the inputs of the batch in
    // flight, so every batch written is whole, and a resumed run (--skip-done) batches its inputs exactly as an
    // uninterrupted run would (the logits depend on the batch's shape); then it stops asking.
    InputSource source = [&](SourceItem& item) {
        if (o.files_from.empty()) return next < all.size() && (item = all[next++], true);
        return inputs.next(item);
    };

    OutputSink sink(file ? file->fd() : STDOUT_FILENO, file ? o.output : "stdout");
    auto writer = make_writer(o.format, sink, o.top_k, o.logits, !(file && file->continues_existing()));
    Progress progress(o.progress_on ? "on" : o.progress_off ? "off" : "auto", total);

    PipelineOptions po;
    po.batch_size = o.batch_size;
    po.align = in.shard_block;
    po.stall_ms = inputs.list_may_stall() ? o.batch_wait_ms : 0;
    po.cancelled = [] { return interrupted(); };
    po.no_more_input = [&] { no_more_input = true; };
    po.top_k = o.top_k;
    po.keep_logits = o.logits;
    po.max_pixels = o.max_pixels;
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // Decoders run at idle priority in the gaps inference leaves (see PipelineOptions::background_decode), so
    // one per core does not oversubscribe the inference threads.
    po.decode_threads = o.decode_threads > 0 ? o.decode_threads : cores;

    std::int64_t n = 0, failed = 0;
    // What is finished is kept whatever ends the run: the records are closed off and --output committed. Not when
    // the output itself failed (nothing more can be written), nor when an input turned out to be the output file.
    auto close_off = [&] {
        writer->end();
        progress.finish();
        if (file) file->commit();
    };
    try {
        writer->begin();
        classify_stream(
            *model, source,
            [&](ClassifyResult&& r) {
                writer->write(r);
                ++n;
                if (!r.ok()) {
                    ++failed;
                    if (o.fail_fast) {
                        warn("stopping at the first bad input (--fail-fast): " + text_field(r.path) + ": " +
                             text_field(r.error));
                        return false;
                    }
                }
                progress.tick(n, failed);
                return true;
            },
            po);
    } catch (const RefusedInput&) {
        throw;
    } catch (...) {
        if (!sink.failed()) {
            try {
                close_off();
            } catch (const std::exception& e) {
                warn(std::string("could not keep the finished records: ") + e.what());
            }
        }
        throw;
    }
    close_off();
    if (interrupted()) {
        warn("interrupted: " + std::to_string(n) + " inputs written");
        return kFatal;
    }
    return failed ? kSomeInputsFailed : kOk;
}

}  // namespace

void setup_classify(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<ClassifyOptions>();
    auto* sub = app.add_subcommand("classify", "Classify images: files, folders, '-' (stdin) or --files-from lists");
    opt->model.add_to(*sub);
    sub->add_option("inputs", opt->inputs, "Image files or folders; '-' reads one encoded image from stdin");
    // CLI11 2.1 hands the arguments after "--" back to the parent app ("not expected") unless a positional of the
    // subcommand still wants a value: this hidden one always does, and the inputs option above takes them all.
    sub->add_option("after_double_dash", opt->never_set)->group("");
    sub->add_option("-k,--top-k", opt->top_k, "Number of classes reported per image")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    sub->add_option("-f,--format", opt->format, "Output format")
        ->check(CLI::IsMember({"text", "json", "jsonl", "csv", "tsv"}))
        ->capture_default_str();
    sub->add_flag("--logits", opt->logits, "Add the raw logits of all classes to each record");
    sub->add_option("-b,--batch-size", opt->batch_size, "Images per forward pass")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    sub->add_option("--decode-threads", opt->decode_threads,
                    "Decode/preprocess threads, run at idle priority (0 = one per core)")
        ->check(CLI::Range(0, 1024));
    sub->add_flag("-r,--recursive", opt->recursive, "Descend into sub-folders");
    sub->add_option("--ext", opt->ext, "Comma-separated extensions picked from folders (default: common image types)");
    sub->add_option("--files-from", opt->files_from, "Read input paths from FILE ('-' = stdin), one per line");
    sub->add_flag("-0,--null", opt->null_sep, "--files-from paths are NUL-separated (find -print0)");
    sub->add_option("--batch-wait", opt->batch_wait_ms,
                    "Milliseconds a partial batch waits for more piped --files-from input before it runs (0 = always "
                    "wait for the whole batch, for bit-exact logits)")
        ->check(CLI::Range(0, kMaxBatchWaitMs))
        ->capture_default_str();
    sub->add_option("-o,--output", opt->output, "Write results to FILE (atomically: temp file + rename)");
    sub->add_flag("--append", opt->append, "Add the records after those already in the --output file (still atomic)");
    sub->add_option(
        "--shard", opt->shard,
        "Process only shard K of N (K/N, 0-based): the blocks of --shard-block inputs whose index % N == K");
    sub->add_option("--shard-block", opt->shard_block,
                    "Inputs per shard block; batches never straddle a block, so every run cuts the same batches")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))
        ->capture_default_str();
    sub->add_option("--skip-done", opt->skip_done, "Skip inputs that have a record in this earlier jsonl result");
    sub->add_flag("--fail-fast", opt->fail_fast, "Stop at the first input that cannot be classified");
    auto* pon = sub->add_flag("--progress", opt->progress_on, "Always show the progress bar on stderr");
    auto* poff = sub->add_flag("--no-progress", opt->progress_off, "Never show the progress bar");
    pon->excludes(poff);
    sub->add_option("--max-pixels", opt->max_pixels,
                    "Reject images with more pixels than this (checked before decoding)")
        ->check(CLI::Range(std::int64_t{1}, std::numeric_limits<std::int64_t>::max()))
        ->capture_default_str();
    sub->callback([opt, sub, &run] {
        // Nothing to classify and nobody piping into it: show how to call it rather than wait on the terminal.
        if (opt->inputs.empty() && opt->files_from.empty() && ::isatty(STDIN_FILENO))
            run = [sub] { return std::cerr << sub->help("vit"), kFatal; };
        else run = [opt] { return run_classify(*opt); };
    });
}

}  // namespace vit::app
