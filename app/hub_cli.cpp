// The Hub from the command line: pull with a progress bar and Ctrl-C, Hub model arguments for --model.
#include "hub_cli.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iostream>

#include "common.hpp"
#include "progress.hpp"

namespace vit::app {

namespace {

// Set by the handler on vit's signal thread (process.hpp), read by the pull: an atomic, lock-free.
std::atomic<int> g_stop{0};

extern "C" void on_stop_signal(int) { g_stop = 1; }

// Installs the Ctrl-C/SIGTERM handler for the length of a pull (no SA_RESTART: waits end early) and restores
// what was there before.
class StopSignals {
public:
    StopSignals() {
        g_stop = 0;
        struct sigaction sa {};
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C ends the process at once
        ::sigaction(SIGINT, &sa, &old_int_);
        ::sigaction(SIGTERM, &sa, &old_term_);
    }
    ~StopSignals() {
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
    }

private:
    struct sigaction old_int_ {
    }, old_term_{};
};

}  // namespace

hub::Snapshot pull_with_progress(const hub::Settings& s, const std::string& repo_id, const std::string& revision) {
    StopSignals signals;
    DownloadProgress bar(::isatty(STDERR_FILENO));
    bool told_wait = false;
    const auto on_event = [&](const hub::PullEvent& e) {
        using Stage = hub::PullEvent::Stage;
        switch (e.stage) {
            case Stage::Downloading:
            case Stage::Cached:
                if (e.total >= 0 || e.done > 0) bar.update(e.file, e.done, e.total);
                break;
            case Stage::Retrying:
                bar.end_line();
                warn("retrying " + (e.file.empty() ? repo_id : e.file) + ": " + e.note);
                break;
            case Stage::Waiting:
                if (!told_wait) {
                    bar.end_line();
                    std::cerr << "vit: waiting for another process that is downloading " << e.file << " of " << repo_id
                              << "\n";
                    told_wait = true;
                }
                break;
            case Stage::Done: bar.end_line(); break;
            case Stage::Resolving: break;
        }
        return g_stop == 0;
    };
    try {
        return hub::pull(s, repo_id, revision, on_event);
    } catch (const hub::HubError& e) {
        bar.end_line();
        if (e.kind != hub::HubError::Kind::Interrupted) throw;
        throw hub::HubError(e.kind, std::string(e.what()) + "; `vit pull " + repo_id +
                                        (revision == "main" ? "" : " --revision " + revision) + "` resumes it");
    }
}

bool parse_hub_arg(const std::string& arg, std::string& repo_id, std::string& revision) {
    const auto at = arg.find('@');
    repo_id = arg.substr(0, at);
    revision = at == std::string::npos ? "main" : arg.substr(at + 1);
    return hub::is_repo_id(repo_id) && !revision.empty();
}

std::filesystem::path hub_model_dir(const std::string& repo_id, const std::string& revision) {
    const hub::Settings s = hub::Settings::from_env();
    if (auto snap = hub::find_cached(s, repo_id, revision)) return snap->dir;
    if (!s.offline)
        std::cerr << "vit: downloading " << repo_id << " from " << s.endpoint << " into " << s.cache_dir.string()
                  << "\n";
    return pull_with_progress(s, repo_id, revision).dir;
}

}  // namespace vit::app
