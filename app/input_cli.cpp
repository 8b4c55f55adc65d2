// The input options and the run setup shared by classify, explain and embed (see input_cli.hpp).
#include "input_cli.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <thread>

#include "common.hpp"
#include "output.hpp"
#include "process.hpp"
#include "progress.hpp"

namespace vit::app {

namespace {

// How long a partial batch waits for more piped input before it runs (PipelineOptions::stall_ms).
constexpr int kMaxBatchWaitMs = 3'600'000;

std::string errno_text(int err) {
    if (err == ENOENT) return "no such file";
    if (err == EACCES) return "permission denied";
    return std::strerror(err);
}

// Paths of the records `is_done` accepts in an earlier jsonl result (surrogate escapes decoded by record_path, so
// any file name matches).
std::set<std::string> read_done(const std::string& file, const InputRun::DoneFilter& is_done) {
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
        if (!is_done || is_done(line)) done.insert(path);
    }
    return done;
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> file_id(const std::string& path) {
    struct stat st {};
    if (path.empty() || path == "-" || ::stat(path.c_str(), &st) != 0) return std::nullopt;
    return std::make_pair(static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino));
}

}  // namespace

void add_input_options(CLI::App& sub, InputCliOptions& o, const InputCliFeatures& f) {
    sub.add_option("inputs", o.inputs, "Image files or folders; '-' reads one encoded image from stdin");
    // CLI11 2.1 hands the arguments after "--" back to the parent app ("not expected") unless a positional of the
    // subcommand still wants a value: this hidden one always does, and the inputs option above takes them all.
    sub.add_option("after_double_dash", o.never_set)->group("");
    sub.add_option("-b,--batch-size", o.batch_size, "Images per forward pass")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    sub.add_option("--decode-threads", o.decode_threads,
                   "Decode/preprocess threads, run at idle priority (0 = one per core)")
        ->check(CLI::Range(0, 1024));
    sub.add_flag("-r,--recursive", o.recursive, "Descend into sub-folders");
    sub.add_option("--ext", o.ext, "Comma-separated extensions picked from folders (default: common image types)");
    sub.add_option("--files-from", o.files_from, "Read input paths from FILE ('-' = stdin), one per line");
    sub.add_flag("-0,--null", o.null_sep, "--files-from paths are NUL-separated (find -print0)");
    sub.add_option("-o,--output", o.output, "Write the " + f.records + " to FILE (atomically: temp file + rename)");
    if (f.resumable) {
        sub.add_option("--batch-wait", o.batch_wait_ms,
                       "Milliseconds a partial batch waits for more piped --files-from input before it runs (0 = "
                       "always wait for the whole batch, for bit-exact results)")
            ->check(CLI::Range(0, kMaxBatchWaitMs))
            ->capture_default_str();
        sub.add_flag("--append", o.append, "Add the records after those already in the --output file (still atomic)");
        sub.add_option(
            "--shard", o.shard,
            "Process only shard K of N (K/N, 0-based): the blocks of --shard-block inputs whose index % N == K");
        sub.add_option("--shard-block", o.shard_block,
                       "Inputs per shard block; batches never straddle a block, so every run cuts the same batches")
            ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))
            ->capture_default_str();
        sub.add_option("--skip-done", o.skip_done,
                       "Skip inputs that have " + f.done_record + " in this earlier jsonl result");
    }
    sub.add_flag("--fail-fast", o.fail_fast, "Stop at the first input that cannot be " + f.verb);
    auto* pon = sub.add_flag("--progress", o.progress_on, "Always show the progress bar on stderr");
    auto* poff = sub.add_flag("--no-progress", o.progress_off, "Never show the progress bar");
    pon->excludes(poff);
    sub.add_option("--max-pixels", o.max_pixels, "Reject images with more pixels than this (checked before decoding)")
        ->check(CLI::Range(std::int64_t{1}, std::numeric_limits<std::int64_t>::max()))
        ->capture_default_str();
}

bool wants_help(const InputCliOptions& o) { return o.inputs.empty() && o.files_from.empty() && ::isatty(STDIN_FILENO); }

InputRun::InputRun(const InputCliOptions& o, const DoneFilter& is_done) : o_(o) {
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

    InputOptions in;
    in.recursive = o.recursive;
    if (!o.ext.empty()) in.extensions = parse_extensions(o.ext);
    if (!o.shard.empty()) parse_shard(o.shard, in.shard_index, in.shard_count);
    in.shard_block = o.shard_block;

    // The output first: what it replaces must not be read, neither as an input nor as a list.
    if (!o.output.empty()) file_ = std::make_unique<AtomicOutput>(o.output, o.append);
    if (file_ && file_->replaces()) {
        const auto out_id = *file_->replaces();
        if (file_id(o.files_from) == out_id)
            throw std::runtime_error(o.output + ": --output is also the --files-from list (it would be overwritten)");
        if (!o.append && file_id(o.skip_done) == out_id)
            throw std::runtime_error(o.output +
                                     ": --output is also the --skip-done file: its records would be lost "
                                     "(--append adds the new records after them)");
        in.refuse.push_back(
            {out_id.first, out_id.second, "is also the --output file (refusing to overwrite an input)"});
    }
    if (!o.skip_done.empty()) {
        done_ = read_done(o.skip_done, is_done);
        in.skip = &done_;
    }
    in.list = o.files_from;
    in.list_delim = o.null_sep ? '\0' : '\n';
    // A signal ends the run through the pipeline (PipelineOptions::cancelled): it finishes the batch in flight,
    // taking that batch's remaining inputs from the list, and then says it takes no more (no_more_input); only
    // then does a wait for the list (a pipe) give up.
    in.cancelled = [flag = no_more_input_] { return flag->load(); };
    list_ = std::make_unique<InputList>(o.inputs, in);
    list_->warn = [](const std::string& m) { warn(text_field(m)); };
}

int InputRun::out_fd() const { return file_ ? file_->fd() : STDOUT_FILENO; }

std::string InputRun::out_name() const { return file_ ? o_.output : "stdout"; }

void InputRun::list_inputs() {
    if (o_.files_from.empty()) {
        SourceItem item;
        while (list_->next(item)) all_.push_back(item);
        total_ = static_cast<std::int64_t>(all_.size());
    }
    // No check for a signal here: after SIGINT/SIGTERM/SIGHUP the pipeline still takes the inputs of the batch in
    // flight, so every batch written is whole and a resumed run (--skip-done) batches its inputs exactly as an
    // uninterrupted run would (the logits depend on the batch's shape); then it stops asking.
    source_ = [this](SourceItem& item) {
        if (o_.files_from.empty()) return next_ < all_.size() && (item = all_[next_++], true);
        return list_->next(item);
    };
}

PipelineOptions InputRun::pipeline() const {
    PipelineOptions po;
    po.batch_size = o_.batch_size;
    po.align = o_.shard_block;
    po.stall_ms = list_->list_may_stall() ? o_.batch_wait_ms : 0;
    po.cancelled = [] { return interrupted(); };
    po.no_more_input = [flag = no_more_input_] { *flag = true; };
    po.max_pixels = o_.max_pixels;
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // Decoders run at idle priority in the gaps inference leaves (see PipelineOptions::background_decode), so
    // one per core does not oversubscribe the inference threads.
    po.decode_threads = o_.decode_threads > 0 ? o_.decode_threads : cores;
    return po;
}

int InputRun::stream(VitModel& model, const PipelineOptions& po, const std::function<void(ClassifyResult&)>& write,
                     const std::function<void()>& close_off, const std::function<bool()>& output_failed) {
    Progress progress(o_.progress_on ? "on" : o_.progress_off ? "off" : "auto", total_);
    auto keep = [&] {
        progress.finish();
        close_off();
    };
    std::int64_t n = 0, failed = 0;
    try {
        classify_stream(
            model, source_,
            [&](ClassifyResult&& r) {
                write(r);
                ++n;
                if (!r.ok()) {
                    ++failed;
                    if (o_.fail_fast) {
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
        if (!output_failed()) {
            try {
                keep();
            } catch (const std::exception& e) {
                warn(std::string("could not keep the finished records: ") + e.what());
            }
        }
        throw;
    }
    keep();
    if (interrupted()) {
        warn("interrupted: " + std::to_string(n) + " inputs written");
        return kFatal;
    }
    return failed ? kSomeInputsFailed : kOk;
}

}  // namespace vit::app
