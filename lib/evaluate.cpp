// ImageFolder evaluation on top of the streaming pipeline.
#include "evaluate.hpp"

#include <algorithm>
#include <chrono>
#include <map>

#include "errors.hpp"
#include "inputs.hpp"

namespace vit {

namespace fs = std::filesystem;

std::vector<EvalClass> map_class_folders(const fs::path& root, const std::vector<std::string>& labels, int num_classes,
                                         std::vector<std::string>* warnings) {
    std::error_code ec;
    if (!fs::is_directory(root, ec))
        throw InputError(root.string() + ": not a directory (expected ROOT/<class>/<images>)");
    std::vector<std::string> folders;
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_directory(ec)) folders.push_back(it->path().filename().string());
    if (ec) throw InputError(root.string() + ": cannot list: " + ec.message());
    std::sort(folders.begin(), folders.end());
    if (folders.empty()) throw InputError(root.string() + ": no class folders (expected ROOT/<class>/<images>)");
    auto sanitized = [](std::string s) {
        std::replace(s.begin(), s.end(), '/', '_');
        std::replace(s.begin(), s.end(), '\\', '_');
        return s;
    };
    auto label_of = [&](int index) {
        return index < static_cast<int>(labels.size()) ? "\"" + labels[static_cast<std::size_t>(index)] + "\""
                                                       : std::string("?");
    };
    std::vector<EvalClass> out;
    std::vector<bool> by_position(folders.size(), false);
    for (std::size_t i = 0; i < folders.size(); ++i) {
        int index = -1;
        for (std::size_t l = 0; l < labels.size() && index < 0; ++l)
            if (labels[l] == folders[i] || sanitized(labels[l]) == folders[i]) index = static_cast<int>(l);
        if (index < 0) {
            if (static_cast<int>(i) >= num_classes)
                throw InputError(root.string() + ": folder \"" + folders[i] +
                                 "\" is not a model label and its position " + std::to_string(i) +
                                 " is beyond the model's " + std::to_string(num_classes) + " classes");
            index = static_cast<int>(i);
            by_position[i] = true;
        }
        out.push_back({folders[i], index});
    }
    // Two folders on one class would score each other's images: refuse, naming both and how each was mapped.
    std::map<int, std::size_t> owner;
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto [it, fresh] = owner.emplace(out[i].index, i);
        if (fresh) continue;
        const std::size_t j = it->second;
        auto how = [&](std::size_t f) {
            return by_position[f] ? "by its position " + std::to_string(f) + " (it names no model label)"
                                  : std::string("by name");
        };
        throw InputError(root.string() + ": folders \"" + folders[j] + "\" and \"" + folders[i] +
                         "\" both map to class " + std::to_string(out[i].index) + " " + label_of(out[i].index) +
                         ": \"" + folders[j] + "\" " + how(j) + ", \"" + folders[i] + "\" " + how(i) +
                         " (rename the folders after the model's labels)");
    }
    const auto n_positional = static_cast<std::size_t>(std::count(by_position.begin(), by_position.end(), true));
    if (warnings && n_positional > 0) {
        std::string m = std::to_string(n_positional) + " of " + std::to_string(folders.size()) +
                        " class folders name no model label and are mapped by their position among the sorted folders";
        if (n_positional == folders.size() && static_cast<int>(folders.size()) != num_classes)
            m += " (" + std::to_string(folders.size()) + " folders for a model of " + std::to_string(num_classes) +
                 " classes: is this the model's dataset?)";
        m += ":";
        std::size_t shown = 0;
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (!by_position[i]) continue;
            if (shown++ == 20) {
                m += " ...";
                break;
            }
            m += (shown > 1 ? ", " : " ") + folders[i] + " -> " + std::to_string(out[i].index) + " " +
                 label_of(out[i].index);
        }
        warnings->push_back(m);
    }
    return out;
}

EvalResult evaluate(VitModel& model, const fs::path& root, const EvalOptions& opt) {
    const ModelSpec& spec = model.spec();
    const int K = spec.model.num_classes;
    EvalResult r;
    r.classes = map_class_folders(root, spec.labels, K, &r.warnings);
    const std::size_t C = r.classes.size();
    r.class_total.assign(C, 0);
    r.class_correct.assign(C, 0);
    r.confusion.assign(C, std::vector<std::int64_t>(K, 0));

    // Per-class sorted image lists, then interleaved so that --limit samples every class.
    std::vector<std::vector<SourceItem>> per_class(C);
    for (std::size_t c = 0; c < C; ++c) {
        InputOptions o;
        o.recursive = true;
        InputList rec({(root / r.classes[c].folder).string()}, o);
        rec.warn = [&](const std::string& m) {  // an empty folder is reported once, below
            if (m.find(": no image files found") == std::string::npos) r.warnings.push_back(m);
        };
        SourceItem item;
        while (rec.next(item)) per_class[c].push_back(item);
    }
    std::vector<std::pair<SourceItem, std::size_t>> items;  // (input, class position)
    for (std::size_t i = 0;; ++i) {
        bool any = false;
        for (std::size_t c = 0; c < C; ++c)
            if (i < per_class[c].size()) {
                items.emplace_back(per_class[c][i], c);
                any = true;
            }
        if (!any) break;
    }
    if (opt.limit > 0 && static_cast<std::int64_t>(items.size()) > opt.limit)
        items.resize(static_cast<std::size_t>(opt.limit));

    std::size_t next = 0;
    InputSource source = [&](SourceItem& item) {
        if (next >= items.size()) return false;
        item = items[next].first;
        item.position = next++;
        return true;
    };
    PipelineOptions po = opt.pipeline;
    po.top_k = std::min(5, K);
    const auto t0 = std::chrono::steady_clock::now();
    classify_stream(
        model, source,
        [&](ClassifyResult&& res) {
            const std::size_t c = items[res.seq].second;
            if (!res.ok()) {
                ++r.unreadable;
                r.errors.push_back(res.path + ": " + res.error);
                return true;
            }
            const int truth = r.classes[c].index;
            ++r.n;
            ++r.class_total[c];
            ++r.confusion[c][res.top_k[0].index];
            if (res.top_k[0].index == truth) ++r.top1_correct, ++r.class_correct[c];
            for (const auto& p : res.top_k)
                if (p.index == truth) ++r.top5_correct;
            return true;
        },
        po);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (std::size_t c = 0; c < C; ++c)
        if (per_class[c].empty())
            r.warnings.push_back("class folder \"" + r.classes[c].folder + "\" has no images: not scored");
    return r;
}

}  // namespace vit
