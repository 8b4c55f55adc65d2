// `vit fit`: a new classification head for your own classes from an ImageFolder (ROOT/<class>/<images>): the
// backbone's features are computed once, a multinomial logistic regression is fitted on them (lib/linear_probe),
// and a model directory is written that every subcommand reads: config.json {backbone, head, labels},
// head.safetensors and fit_report.json.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "errors.hpp"
#include "inputs.hpp"
#include "linear_probe.hpp"
#include "pipeline.hpp"
#include "process.hpp"
#include "progress.hpp"
#include "safetensors_write.hpp"

namespace vit::app {

namespace fs = std::filesystem;

namespace {

struct FitOptions {
    ModelOptions model;
    std::string train_root;
    std::string val_root;
    std::string output;
    int epochs = 500;
    double l2 = -1;
    unsigned seed = 0;
    int batch_size = 16;
    bool verbose = false;
};

struct Folder {
    std::vector<std::string> classes;                 // sorted folder names
    std::vector<std::pair<std::string, int>> images;  // path, class
};

Folder scan(const fs::path& root) {
    std::error_code ec;
    if (!fs::is_directory(root, ec))
        throw InputError(root.string() + ": not a directory (expected ROOT/<class>/<images>)");
    Folder f;
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(root, ec))
        if (e.is_directory(ec)) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
        const int c = static_cast<int>(f.classes.size());
        f.classes.push_back(d.filename().string());
        InputOptions in;
        InputList list({d.string()}, in);
        SourceItem item;
        while (list.next(item)) f.images.push_back({item.path, c});
    }
    return f;
}

// Features of every image (rows in `images` order; unreadable ones left out, listed in `bad`).
ProbeData embed(VitModel& model, const Folder& f, int batch_size, std::vector<std::string>& bad, bool progress_on) {
    ProbeData d;
    d.e = model.feature_dim(FeaturePool::Head);
    d.k = static_cast<int>(f.classes.size());
    PipelineOptions po;
    po.batch_size = batch_size;
    po.decode_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    po.output_dim = d.e;
    po.rank = false;
    po.cancelled = [] { return interrupted(); };
    po.run = [&model](const float* images, std::int64_t B, const std::uint64_t*, float* out) {
        model.forward_features(images, B, out, FeaturePool::Head);
    };
    Progress progress(progress_on ? "auto" : "off", static_cast<std::int64_t>(f.images.size()));
    std::size_t next = 0;
    std::int64_t n = 0;
    InputSource source = [&](SourceItem& item) {
        if (next >= f.images.size()) return false;
        item = SourceItem{f.images[next].first, next, ""};
        ++next;
        return true;
    };
    classify_stream(
        model, source,
        [&](ClassifyResult&& r) {
            ++n;
            if (!r.ok()) bad.push_back(r.path + ": " + r.error);
            else {
                d.x.insert(d.x.end(), r.logits.begin(), r.logits.end());
                d.y.push_back(f.images[r.seq].second);
                ++d.n;
            }
            progress.tick(n, static_cast<std::int64_t>(bad.size()));
            return true;
        },
        po);
    progress.finish();
    if (interrupted()) throw std::runtime_error("interrupted: nothing written");
    return d;
}

// How config.json names the backbone: relative to the model directory when that leads to it (so the two can be
// moved together), else absolute. `out_dir` need not exist yet; its parent does.
std::string backbone_reference(const fs::path& backbone, const fs::path& out_dir) {
    std::error_code ec;
    const fs::path parent = fs::canonical(out_dir.parent_path().empty() ? fs::path(".") : out_dir.parent_path(), ec);
    if (ec) return backbone.string();
    const fs::path rel = backbone.lexically_relative(parent / out_dir.filename());
    if (rel.empty()) return backbone.string();
    // The relative path is read from inside the new directory: ".." steps out of it, so `parent / rel` minus its
    // first ".." must be the backbone itself (a symlinked parent could make the lexical answer wrong).
    auto it = rel.begin();
    if (it == rel.end() || *it != "..") return backbone.string();
    fs::path from_parent = parent;
    for (++it; it != rel.end(); ++it) from_parent /= *it;
    if (!fs::equivalent(from_parent, backbone, ec) || ec) return backbone.string();
    return rel.generic_string();
}

void write_json(const fs::path& p, const nlohmann::json& j) {
    std::ofstream out(p);
    out << j.dump(2) << "\n";
    out.close();
    if (!out) throw std::runtime_error("write error on " + p.filename().string());
}

int run_fit(const FitOptions& o) {
    const auto start = std::chrono::steady_clock::now();
    install_interrupt_handlers();  // a signal stops the embedding; SIGXFSZ becomes a write error (nothing kept)
    const fs::path out_dir = o.output;
    std::error_code ec;
    if (fs::exists(out_dir, ec))
        throw std::runtime_error(o.output + ": already exists (vit fit writes a new directory)");
    Folder train = scan(o.train_root);
    if (train.classes.size() < 2)
        throw InputError(o.train_root + ": " + std::to_string(train.classes.size()) +
                         " class folder(s); vit fit needs at least 2 (ROOT/<class>/<images>)");
    std::vector<int> count(train.classes.size(), 0);
    for (const auto& [p, c] : train.images) ++count[static_cast<std::size_t>(c)];
    for (std::size_t c = 0; c < count.size(); ++c) {
        if (count[c] == 0) throw InputError(o.train_root + "/" + train.classes[c] + ": no images (an empty class)");
        if (count[c] == 1)
            throw InputError(o.train_root + "/" + train.classes[c] + ": only 1 image (a class needs at least 2)");
    }

    auto model = load_model(o.model);
    const ModelSpec& spec = model->spec();
    if (spec.config_path.empty() || !o.model.config.empty())
        throw std::runtime_error("vit fit needs a model directory (--model DIR or a name), not --config/--weights");
    const fs::path backbone = fs::canonical(spec.config_path.parent_path());
    const bool tty = ::isatty(STDERR_FILENO);

    std::vector<std::string> bad;
    ProbeData data = embed(*model, train, o.batch_size, bad, tty);
    if (!bad.empty()) {
        warn(std::to_string(bad.size()) + " unreadable image(s) skipped" +
             (o.verbose ? ":" : " (--verbose lists them)"));
        if (o.verbose)
            for (const auto& b : bad) std::cerr << "  " << b << "\n";
    }
    std::vector<int> used(train.classes.size(), 0);
    for (int y : data.y) ++used[static_cast<std::size_t>(y)];
    for (std::size_t c = 0; c < used.size(); ++c)
        if (used[c] < 2)
            throw InputError(o.train_root + "/" + train.classes[c] + ": " + std::to_string(used[c]) +
                             " readable image(s); a class needs at least 2");

    ProbeOptions po;
    po.l2 = o.l2;
    po.seed = o.seed;
    po.max_iter = o.epochs;
    const ProbeResult head = fit_probe(data, po);

    nlohmann::json report;
    report["classes"] = train.classes;
    report["counts"] = used;
    report["unreadable"] = bad.size();
    report["backbone"] = backbone.string();
    report["feature_dim"] = data.e;
    report["l2"] = head.l2;
    report["l2_chosen_by"] = o.l2 < 0 ? "cross-validation" : "--l2";
    report["cv_scores"] = nlohmann::json::array();
    for (const auto& [l2, acc] : head.cv_scores) report["cv_scores"].push_back({{"l2", l2}, {"accuracy", acc}});
    report["train_accuracy"] = head.train_accuracy;
    report["cv_accuracy"] = head.cv_accuracy >= 0 ? nlohmann::json(head.cv_accuracy) : nlohmann::json(nullptr);
    report["iterations"] = head.iterations;
    report["seed"] = o.seed;
    if (!o.val_root.empty()) {
        Folder val = scan(o.val_root);
        std::map<std::string, int> index;
        for (std::size_t c = 0; c < train.classes.size(); ++c) index[train.classes[c]] = static_cast<int>(c);
        for (auto& [p, c] : val.images) {
            const std::string name = val.classes[static_cast<std::size_t>(c)];
            if (!index.count(name))
                throw InputError(o.val_root + "/" + name + ": no class of that name in " + o.train_root);
            c = index[name];
        }
        val.classes = train.classes;
        std::vector<std::string> vbad;
        const ProbeData vd = embed(*model, val, o.batch_size, vbad, tty);
        report["val_accuracy"] = vd.n ? probe_accuracy(head, vd) : 0.0;
        report["val_images"] = vd.n;
        report["val_unreadable"] = vbad.size();
    }
    report["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    // Written into a temporary directory next to the destination, then renamed into place.
    const fs::path parent = out_dir.parent_path().empty() ? fs::path(".") : out_dir.parent_path();
    std::string tmpl = (parent / ("." + out_dir.filename().string() + ".vit-tmp-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data()))
        throw std::runtime_error(o.output + ": cannot create a temporary directory next to it");
    const fs::path tmp = tmpl;
    try {
        nlohmann::json cfg;
        cfg["backbone"] = backbone_reference(backbone, out_dir);
        cfg["head"] = "head.safetensors";
        cfg["labels"] = train.classes;
        cfg["description"] = "vit fit: a logistic-regression head on the features of " + backbone.string();
        write_json(tmp / "config.json", cfg);
        std::ofstream h(tmp / "head.safetensors", std::ios::binary);
        write_safetensors(h, {{"head.weight", {{data.k, data.e}, head.weight}}, {"head.bias", {{data.k}, head.bias}}});
        h.close();
        if (!h) throw std::runtime_error("write error on head.safetensors");
        write_json(tmp / "fit_report.json", report);
        fs::rename(tmp, out_dir);
    } catch (const std::exception& e) {
        fs::remove_all(tmp, ec);
        throw std::runtime_error(o.output + ": " + e.what() + " (nothing written)");
    }
    std::cout << report.dump(2) << "\n";
    return kOk;
}

}  // namespace

void setup_fit(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<FitOptions>();
    auto* sub = app.add_subcommand("fit",
                                   "Train a new head for your own classes from an ImageFolder (ROOT/<class>/<images>)");
    opt->model.add_to(*sub);
    sub->add_option("train_root", opt->train_root, "ImageFolder of training images")->required();
    sub->add_option("-o,--output", opt->output, "Model directory to write (must not exist)")->required();
    sub->add_option("--val", opt->val_root, "ImageFolder of validation images (same class names)");
    sub->add_option("--epochs", opt->epochs, "Solver iterations at most (L-BFGS)")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    sub->add_option("--l2", opt->l2, "L2 strength (default: chosen by 5-fold cross-validation)")
        ->check(CLI::Range(0.0, 1e6));
    sub->add_option("--seed", opt->seed, "Seed of the cross-validation folds")->capture_default_str();
    sub->add_option("-b,--batch-size", opt->batch_size, "Images per forward pass")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    sub->add_flag("--verbose", opt->verbose, "List the unreadable images");
    sub->callback([opt, &run] { run = [opt] { return run_fit(*opt); }; });
}

}  // namespace vit::app
