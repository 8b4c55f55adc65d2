// Hugging Face Hub client: downloads what a model needs into the cache layout huggingface_hub uses, so the files
// are shared with Python users (models--ORG--NAME/{blobs,snapshots,refs}), and finds cached models offline.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "errors.hpp"

namespace vit::hub {

// A Hub failure. The message names the repository, file or URL and what to do; `kind` lets the CLI react.
struct HubError : ModelError {
    enum class Kind {
        BadRepoId,     // not ORG/NAME
        NotFound,      // repository, revision or file (HTTP 404)
        Unauthorized,  // private or gated, no or a refused token (HTTP 401/403)
        Checksum,      // downloaded bytes do not match the sha256 or size the Hub announced
        DiskFull,      // writing the cache failed
        Network,       // no connection, DNS failure, too many failed retries
        Http,          // any other HTTP status
        NotCached,     // offline (HF_HUB_OFFLINE) and not in the cache
        Unsupported,   // the repository has no weights vit can read (e.g. only pytorch_model.bin)
        Interrupted,   // the progress callback asked to stop (Ctrl-C): the .incomplete file is kept
    };
    HubError(Kind k, const std::string& msg) : ModelError(msg), kind(k) {}
    Kind kind;
};

// Where and how to reach the Hub, read from the environment as huggingface_hub reads it.
struct Settings {
    std::string endpoint = "https://huggingface.co";  // no trailing '/'
    std::filesystem::path cache_dir;                  // the hub cache (holds models--ORG--NAME folders)
    std::string token;                                // empty: anonymous
    bool offline = false;

    // HF_ENDPOINT; HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
    // ~/.cache/huggingface/hub; HF_TOKEN, else the token file huggingface-cli login writes ($HF_TOKEN_PATH or
    // $HF_HOME/token); HF_HUB_OFFLINE (1/true/yes/on).
    static Settings from_env();
};

// True for a Hub model id ORG/NAME (letters, digits, '-', '_', '.'; no "--" or "..").
bool is_repo_id(const std::string& s);

// CACHE/models--ORG--NAME
std::filesystem::path repo_folder(const Settings& s, const std::string& repo_id);

// One step of a pull, for a progress display. `total` is -1 when unknown.
struct PullEvent {
    enum class Stage { Resolving, Waiting, Downloading, Retrying, Cached, Done };
    Stage stage;
    std::string file;  // the file in the repository (empty while resolving the revision)
    std::int64_t done = 0, total = -1;
    std::string note;  // Retrying: why
};
// Called often during transfers and waits; returning false stops the pull (HubError::Interrupted).
using PullCallback = std::function<bool(const PullEvent&)>;

struct Snapshot {
    std::filesystem::path dir;  // CACHE/models--ORG--NAME/snapshots/<commit>
    std::string commit;
    std::vector<std::string> files;
    std::int64_t downloaded = 0;  // bytes fetched by this pull
};

// Downloads config.json, preprocessor_config.json (when present), the safetensors weights (one file, or an
// index and every shard it names) and the small files config.json names (e.g. labels.txt) at `revision`
// (branch, tag or commit). Files already in the snapshot are not fetched again; an interrupted download resumes.
// Offline: the cached snapshot, or HubError::NotCached.
Snapshot pull(const Settings& s, const std::string& repo_id, const std::string& revision = "main",
              const PullCallback& progress = {});

// The cached snapshot of repo_id at revision when it holds every file the model needs; never uses the network.
std::optional<Snapshot> find_cached(const Settings& s, const std::string& repo_id,
                                    const std::string& revision = "main");

// One snapshot in the cache.
struct CachedModel {
    std::string repo_id;
    std::string commit;
    std::vector<std::string> refs;  // revisions (branches/tags) that point at this commit
    std::filesystem::path dir;      // the snapshot folder
    std::int64_t size = 0;          // bytes of the files it links to
    bool complete = false;          // holds everything the model needs
};
std::vector<CachedModel> list_cached(const Settings& s);

}  // namespace vit::hub
