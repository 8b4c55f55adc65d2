// `vit embed`: the pooled pre-logits feature of each input (what the head sees, or --pool cls|mean), streamed in
// input order as jsonl/json/csv records or one N x D float32 .npy matrix.
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <thread>

#include "atomic_output.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "inputs.hpp"
#include "npy.hpp"
#include "output.hpp"
#include "pipeline.hpp"
#include "progress.hpp"

namespace vit::app {

namespace {

struct EmbedOptions {
    ModelOptions model;
    std::vector<std::string> inputs;
    std::string format = "jsonl";
    std::string pool = "head";
    bool normalize = false;
    int batch_size = 8;
    bool recursive = false;
    std::string ext;
    std::string files_from;
    bool null_sep = false;
    std::string output;
    std::string shard;
    std::string skip_done;
    bool progress_on = false, progress_off = false;
};

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_embed_signal(int sig) {
    g_stop = 1;
    std::signal(sig, SIG_DFL);
}

FeaturePool parse_pool(const std::string& s) {
    return s == "cls" ? FeaturePool::Cls : s == "mean" ? FeaturePool::Mean : FeaturePool::Head;
}

// Paths that already have an embedding in an earlier jsonl result (error records are tried again); the path is
// read back byte for byte through output.hpp's record_path, as classify's --skip-done does.
std::set<std::string> done_paths(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file + ": cannot open --skip-done file");
    std::set<std::string> done;
    std::string path;
    for (std::string line; std::getline(in, line);)
        if (line.find("\"embedding\"") != std::string::npos && record_path(line, path)) done.insert(path);
    return done;
}

void l2_normalize(std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += static_cast<double>(x) * x;
    if (s > 0) {
        const double inv = 1.0 / std::sqrt(s);
        for (float& x : v) x = static_cast<float>(x * inv);
    }
}

int run_embed(const EmbedOptions& o) {
    if (o.inputs.empty() && o.files_from.empty())
        throw std::runtime_error("no inputs: give image files or folders, '-' for stdin, or --files-from");
    if (o.format == "npy" && o.output.empty())
        throw std::runtime_error("--format npy needs -o FILE (the matrix and FILE.paths.txt are written there)");
    InputOptions in;
    in.recursive = o.recursive;
    if (!o.ext.empty()) in.extensions = parse_extensions(o.ext);
    if (!o.shard.empty()) parse_shard(o.shard, in.shard_index, in.shard_count);
    std::set<std::string> done;
    if (!o.skip_done.empty()) {
        done = done_paths(o.skip_done);
        in.skip = &done;
    }
    in.list = o.files_from;
    in.list_delim = o.null_sep ? '\0' : '\n';
    in.cancelled = [] { return g_stop != 0; };
    InputList inputs(o.inputs, in);
    inputs.warn = [](const std::string& m) { warn(m); };

    auto model = load_model(o.model);
    const FeaturePool pool = parse_pool(o.pool);
    const int D = model->feature_dim(pool);
    if (pool == FeaturePool::Cls && !model->config().class_token)
        throw std::runtime_error("--pool cls: this model has no class token (use --pool mean)");

    std::unique_ptr<AtomicOutput> file, paths;
    if (!o.output.empty()) file = std::make_unique<AtomicOutput>(o.output, false);
    if (o.format == "npy") paths = std::make_unique<AtomicOutput>(o.output + ".paths.txt", false);
    OutputSink out(file ? file->fd() : STDOUT_FILENO, file ? o.output : "stdout");
    std::unique_ptr<OutputSink> path_out;
    if (paths) path_out = std::make_unique<OutputSink>(paths->fd(), o.output + ".paths.txt");
    constexpr int kRowsWidth = 20;  // the row count is patched in at the end, at the same header length
    if (o.format == "npy") out.write(npy_header_f32(0, static_cast<std::uint64_t>(D), kRowsWidth));
    if (o.format == "json") out.write("[");
    if (o.format == "csv") {
        std::string h = "path,error";
        for (int i = 0; i < D; ++i) h += ",e" + std::to_string(i);
        out.write(h + "\n");
    }
    Progress progress(o.progress_on ? "on" : o.progress_off ? "off" : "auto", -1);

    PipelineOptions po;
    po.batch_size = o.batch_size;
    po.align = in.shard_block;
    po.stall_ms = inputs.list_may_stall() ? 250 : 0;
    po.cancelled = [] { return g_stop != 0; };
    po.decode_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    po.output_dim = D;
    po.rank = false;
    VitModel& m = *model;
    po.run = [&m, pool](const float* images, std::int64_t B, const std::uint64_t*, float* outp) {
        m.forward_features(images, B, outp, pool);
    };
    std::signal(SIGINT, on_embed_signal);
    std::signal(SIGTERM, on_embed_signal);
    std::uint64_t rows = 0;
    std::int64_t n = 0, failed = 0;
    InputSource source = [&](SourceItem& item) { return !g_stop && inputs.next(item); };
    classify_stream(
        *model, source,
        [&](ClassifyResult&& r) {
            ++n;
            if (!r.ok()) ++failed;
            if (r.ok() && o.normalize) l2_normalize(r.logits);
            if (o.format == "npy") {
                if (r.ok()) {
                    out.write(std::string_view(reinterpret_cast<const char*>(r.logits.data()), r.logits.size() * 4));
                    path_out->write(r.path + "\n");
                    path_out->flush();
                    ++rows;
                } else {
                    warn(r.path + ": " + r.error + " (no row)");
                }
            } else if (o.format == "csv") {
                std::string line = csv_field(r.path) + "," + csv_field(r.error);
                char buf[32];
                if (r.ok())
                    for (float v : r.logits) std::snprintf(buf, sizeof buf, ",%.9g", v), line += buf;
                else line.append(static_cast<std::size_t>(D), ',');
                out.write(line + "\n");
            } else {
                std::string rec = "{\"path\": " + json_string(r.path);
                if (r.ok()) {
                    rec += ", \"embedding\": [";
                    char buf[32];
                    for (std::size_t i = 0; i < r.logits.size(); ++i)
                        std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", r.logits[i]), rec += buf;
                    rec += "]}";
                } else {
                    rec += ", \"error\": " + json_string(r.error) + "}";
                }
                out.write(o.format == "json" ? (n > 1 ? ",\n" : "\n") + rec : rec + "\n");
            }
            out.flush();
            progress.tick(n, failed);
            return true;
        },
        po);
    progress.finish();
    if (o.format == "json") out.write(n ? "\n]\n" : "]\n");
    out.flush();
    if (o.format == "npy") {
        const std::string h = npy_header_f32(rows, static_cast<std::uint64_t>(D), kRowsWidth);
        if (::pwrite(file->fd(), h.data(), h.size(), 0) != static_cast<ssize_t>(h.size()))
            throw std::runtime_error(o.output + ": cannot rewrite the .npy header (a regular file is needed)");
    }
    if (g_stop) {
        warn("interrupted: nothing committed");
        return kFatal;
    }
    if (paths) paths->commit();
    if (file) file->commit();
    return failed ? kSomeInputsFailed : kOk;
}

}  // namespace

void setup_embed(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<EmbedOptions>();
    auto* sub = app.add_subcommand("embed", "Feature vectors (the head's input, or --pool cls|mean) of images");
    opt->model.add_to(*sub);
    sub->add_option("inputs", opt->inputs, "Image files or folders; '-' reads one encoded image from stdin");
    sub->add_option("-f,--format", opt->format,
                    "Output format (npy: an N x D float32 matrix at -o FILE, rows listed "
                    "in FILE.paths.txt)")
        ->check(CLI::IsMember({"jsonl", "json", "csv", "npy"}))
        ->capture_default_str();
    sub->add_option("--pool", opt->pool,
                    "head: what the classifier sees; cls: the class token; mean: the mean patch token")
        ->check(CLI::IsMember({"head", "cls", "mean"}))
        ->capture_default_str();
    sub->add_flag("--normalize", opt->normalize, "Scale each vector to unit L2 length");
    sub->add_option("-b,--batch-size", opt->batch_size, "Images per forward pass")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    sub->add_flag("-r,--recursive", opt->recursive, "Descend into sub-folders");
    sub->add_option("--ext", opt->ext, "Comma-separated extensions picked from folders");
    sub->add_option("--files-from", opt->files_from, "Read input paths from FILE ('-' = stdin), one per line");
    sub->add_flag("-0,--null", opt->null_sep, "--files-from paths are NUL-separated (find -print0)");
    sub->add_option("-o,--output", opt->output, "Write to FILE (atomically: temp file + rename)");
    sub->add_option("--shard", opt->shard, "Process only shard K of N (K/N, 0-based)");
    sub->add_option("--skip-done", opt->skip_done, "Skip inputs that have an embedding in this earlier jsonl result");
    auto* pon = sub->add_flag("--progress", opt->progress_on, "Always show the progress bar on stderr");
    auto* poff = sub->add_flag("--no-progress", opt->progress_off, "Never show the progress bar");
    pon->excludes(poff);
    sub->callback([opt, &run] { run = [opt] { return run_embed(*opt); }; });
}

}  // namespace vit::app
