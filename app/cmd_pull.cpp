// `vit pull ORG/NAME`: downloads a model from the Hugging Face Hub into the shared Hub cache and prints its
// snapshot folder.
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
#include "hub_cli.hpp"

namespace vit::app {

namespace {

struct PullOptions {
    std::string model;
    std::string revision;
};

int run_pull(const PullOptions& o) {
    std::string repo_id, revision;
    if (!parse_hub_arg(o.model, repo_id, revision))
        throw hub::HubError(
            hub::HubError::Kind::BadRepoId,
            "'" + o.model + "' is not a Hub model id (expected ORG/NAME, e.g. facebook/deit-tiny-patch16-224)");
    if (!o.revision.empty()) {
        if (o.model.find('@') != std::string::npos)
            throw hub::HubError(hub::HubError::Kind::BadRepoId,
                                "give the revision once: ORG/NAME@REV or --revision REV");
        revision = o.revision;
    }
    const hub::Settings s = hub::Settings::from_env();
    const hub::Snapshot snap = pull_with_progress(s, repo_id, revision);
    std::cerr << "vit: " << repo_id << " at " << revision << " (commit " << snap.commit << "): " << snap.files.size()
              << " file" << (snap.files.size() == 1 ? "" : "s") << ", " << snap.downloaded << " bytes downloaded\n";
    std::cout << snap.dir.string() << "\n";
    return kOk;
}

}  // namespace

void setup_pull(CLI::App& app, std::function<int()>& run) {
    auto opt = std::make_shared<PullOptions>();
    auto* sub = app.add_subcommand("pull",
                                   "Download a model from the Hugging Face Hub into the Hub cache (shared with "
                                   "Python's huggingface_hub) and print its folder");
    sub->add_option("model", opt->model, "Hub model id ORG/NAME (or ORG/NAME@REVISION)")->required();
    sub->add_option("-r,--revision", opt->revision, "Branch, tag or commit (default: main)");
    sub->footer(
        "Environment: HF_ENDPOINT (default https://huggingface.co), HF_HUB_CACHE / HF_HOME (default "
        "~/.cache/huggingface/hub), HF_TOKEN (private and gated models), HF_HUB_OFFLINE=1 (cache only).");
    sub->callback([opt, &run] { run = [opt] { return run_pull(*opt); }; });
}

}  // namespace vit::app
