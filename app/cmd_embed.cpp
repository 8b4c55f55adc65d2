// `vit embed`: the pooled pre-logits feature of each input (what the head sees, or --pool cls|mean), streamed in
// input order as jsonl/json/csv records or one N x D float32 .npy matrix.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "atomic_output.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "input_cli.hpp"
#include "npy.hpp"
#include "output.hpp"
#include "pipeline.hpp"

namespace vit::app {

namespace {

struct EmbedOptions {
    ModelOptions model;
    InputCliOptions input;
    std::string format = "jsonl";
    std::string pool = "head";
    bool normalize = false;
};

FeaturePool parse_pool(const std::string& s) {
    return s == "cls" ? FeaturePool::Cls : s == "mean" ? FeaturePool::Mean : FeaturePool::Head;
}

void l2_normalize(std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += static_cast<double>(x) * x;
    if (s > 0) {
        const double inv = 1.0 / std::sqrt(s);
        for (float& x : v) x = static_cast<float>(x * inv);
    }
}

// One record per input in the chosen format; npy rows go to the matrix and their paths to FILE.paths.txt.
class EmbedWriter {
public:
    EmbedWriter(const std::string& format, OutputSink& out, OutputSink* paths, int dim, bool header)
        : format_(format), out_(out), paths_(paths), dim_(dim), header_(header) {}

    // The .npy header's row count is patched in at the end, at the same header length.
    static constexpr int kRowsWidth = 20;

    void begin() {
        if (format_ == "npy") out_.write(npy_header_f32(0, static_cast<std::uint64_t>(dim_), kRowsWidth));
        if (format_ == "json") out_.write("[");
        if (format_ == "csv" && header_) {
            std::string h = "path,error";
            for (int i = 0; i < dim_; ++i) h += ",e" + std::to_string(i);
            out_.write(h + "\n");
        }
    }

    void write(const ClassifyResult& r) {
        ++n_;
        if (format_ == "npy") {
            if (r.ok()) {
                out_.write(std::string_view(reinterpret_cast<const char*>(r.logits.data()), r.logits.size() * 4));
                paths_->write(r.path + "\n");
                paths_->flush();
                ++rows_;
            } else {
                warn(text_field(r.path) + ": " + text_field(r.error) + " (no row)");
            }
        } else if (format_ == "csv") {
            std::string line = csv_field(r.path) + "," + csv_field(r.error);
            char buf[32];
            if (r.ok())
                for (float v : r.logits) std::snprintf(buf, sizeof buf, ",%.9g", static_cast<double>(v)), line += buf;
            else line.append(static_cast<std::size_t>(dim_), ',');
            out_.write(line + "\n");
        } else {
            std::string rec = "{\"path\": " + json_string(r.path);
            if (r.ok()) {
                rec += ", \"embedding\": [";
                char buf[32];
                for (std::size_t i = 0; i < r.logits.size(); ++i)
                    std::snprintf(buf, sizeof buf, "%s%.9g", i ? ", " : "", static_cast<double>(r.logits[i])),
                        rec += buf;
                rec += "]}";
            } else {
                rec += ", \"error\": " + json_string(r.error) + "}";
            }
            out_.write(format_ == "json" ? (n_ > 1 ? ",\n" : "\n") + rec : rec + "\n");
        }
        out_.flush();
    }

    // Closes the json array; the .npy header gets the row count (`fd`: the matrix file's descriptor).
    void end(int fd, const std::string& name) {
        if (format_ == "json") out_.write(n_ ? "\n]\n" : "]\n");
        out_.flush();
        if (format_ != "npy") return;
        const std::string h = npy_header_f32(rows_, static_cast<std::uint64_t>(dim_), kRowsWidth);
        if (::pwrite(fd, h.data(), h.size(), 0) != static_cast<ssize_t>(h.size()))
            throw std::runtime_error(name + ": cannot rewrite the .npy header (a regular file is needed)");
    }

private:
    std::string format_;
    OutputSink& out_;
    OutputSink* paths_;
    int dim_;
    bool header_;
    std::int64_t n_ = 0;
    std::uint64_t rows_ = 0;
};

int run_embed(const EmbedOptions& o) {
    const bool npy = o.format == "npy";
    if (npy && o.input.output.empty())
        throw std::runtime_error("--format npy needs -o FILE (the matrix and FILE.paths.txt are written there)");
    if (o.input.append && (npy || o.format == "json"))
        throw std::runtime_error("--append cannot add to a --format " + o.format + " file: use jsonl or csv");
    // An earlier result's inputs count as done when they have an embedding (error records are tried again).
    InputRun run(o.input, [](const std::string& line) { return line.find("\"embedding\"") != std::string::npos; });

    auto model = load_model(o.model);  // model problems are fatal before any output is written
    const FeaturePool pool = parse_pool(o.pool);
    const int D = model->feature_dim(pool);
    if (pool == FeaturePool::Cls && !model->config().class_token)
        throw std::runtime_error("--pool cls: this model has no class token (use --pool mean)");

    run.list_inputs();
    AtomicOutput* file = run.file();
    std::unique_ptr<AtomicOutput> paths;
    if (npy) paths = std::make_unique<AtomicOutput>(o.input.output + ".paths.txt", false);
    OutputSink out(run.out_fd(), run.out_name());
    std::unique_ptr<OutputSink> path_out;
    if (paths) path_out = std::make_unique<OutputSink>(paths->fd(), o.input.output + ".paths.txt");
    EmbedWriter writer(o.format, out, path_out.get(), D, !(file && file->continues_existing()));

    PipelineOptions po = run.pipeline();
    po.output_dim = D;
    po.rank = false;
    VitModel& m = *model;
    po.run = [&m, pool](const float* images, std::int64_t B, const std::uint64_t*, float* outp) {
        m.forward_features(images, B, outp, pool);
    };
    writer.begin();
    // The .npy header is patched with the rows written, whatever ends the run.
    return run.stream(
        *model, po,
        [&](ClassifyResult& r) {
            if (r.ok() && o.normalize) l2_normalize(r.logits);
            writer.write(r);
        },
        [&] {
            writer.end(file ? file->fd() : -1, o.input.output);
            if (paths) paths->commit();
            if (file) file->commit();
        },
        [&] { return out.failed() || (path_out && path_out->failed()); });
}

}  // namespace

void setup_embed(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<EmbedOptions>();
    auto* sub = app.add_subcommand("embed", "Feature vectors (the head's input, or --pool cls|mean) of images");
    opt->model.add_to(*sub);
    sub->add_option("-f,--format", opt->format,
                    "Output format (npy: an N x D float32 matrix at -o FILE, rows listed in FILE.paths.txt)")
        ->check(CLI::IsMember({"jsonl", "json", "csv", "npy"}))
        ->capture_default_str();
    sub->add_option("--pool", opt->pool,
                    "head: what the classifier sees; cls: the class token; mean: the mean patch token")
        ->check(CLI::IsMember({"head", "cls", "mean"}))
        ->capture_default_str();
    sub->add_flag("--normalize", opt->normalize, "Scale each vector to unit L2 length");
    add_input_options(*sub, opt->input, {"embedded", "records", true, "an embedding"});
    sub->callback([opt, sub, &run] {
        if (wants_help(opt->input)) run = [sub] { return std::cerr << sub->help("vit"), kFatal; };
        else run = [opt] { return run_embed(*opt); };
    });
}

}  // namespace vit::app
