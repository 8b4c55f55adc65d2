// `pull`: resolves a revision with the Hub API, then downloads each file a model needs into the cache as
// huggingface_hub does (HEAD for the etag and commit, the blob through a locked .incomplete file, verified, renamed,
// linked into the snapshot), and turns the Hub's error answers into messages that say what to do.
#include <sys/statvfs.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "hub_internal.hpp"

namespace vit::hub {

namespace fs = std::filesystem;
using detail::Response;
using nlohmann::json;

namespace {

using Stage = PullEvent::Stage;

bool is_hex(const std::string& s, std::size_t n) {
    return s.size() == n &&
           std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// An etag becomes a file name in blobs/: keep it to the characters the Hub uses.
bool safe_etag(const std::string& e) {
    return !e.empty() && e.size() <= 128 && e[0] != '.' && std::all_of(e.begin(), e.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

class Puller {
public:
    Puller(const Settings& s, const std::string& repo_id, const std::string& revision, const PullCallback& cb)
        : s_(s), repo_id_(repo_id), revision_(revision), repo_(repo_folder(s, repo_id)), cb_(cb), http_(s) {}

    Snapshot run();

private:
    bool emit(Stage st, const std::string& file, std::int64_t done = 0, std::int64_t total = -1,
              const std::string& note = "") {
        const PullEvent e{st, file, done, total, note};
        if (st != Stage::Retrying && st != Stage::Waiting) current_ = e;  // messages are told once
        return !cb_ || cb_(e);
    }
    // Asks the callback whether to go on, showing the last progress state again (never a message twice).
    bool cancelled() { return cb_ && !cb_(current_); }
    [[noreturn]] void raise_for_status(const Response& r, const std::string& file) const;
    void fetch_file(const std::string& file);
    void check_space(const fs::path& part, std::int64_t size) const;

    const Settings& s_;
    const std::string repo_id_, revision_;
    const fs::path repo_;
    const PullCallback& cb_;
    detail::Http http_;
    PullEvent current_{Stage::Resolving, "", 0, -1, ""};
    std::string commit_;
    Snapshot snap_;
};

// huggingface_hub's hf_raise_for_status, with what to do in the message.
void Puller::raise_for_status(const Response& r, const std::string& file) const {
    const std::string code = r.header("x-error-code"), msg = r.header("x-error-message");
    const std::string from = " (HTTP " + std::to_string(r.status) + " from " + r.url + (msg.empty() ? "" : ": " + msg) +
                             ")";
    const std::string token_hint = s_.token.empty()
                                       ? "set HF_TOKEN to a token that can read it"
                                       : "the token in HF_TOKEN was sent: check that its account can read it";
    const std::string at_rev = " at revision " + revision_;
    using K = HubError::Kind;
    if (code == "RepoNotFound" || (r.status == 404 && file.empty() && code.empty())) {
        if (r.status == 401)
            throw HubError(K::Unauthorized, "repository " + repo_id_ + " not found on " + s_.endpoint +
                                                ", or it is private or gated: check the name, or " + token_hint + from);
        throw HubError(K::NotFound, "repository " + repo_id_ + " not found on " + s_.endpoint + from);
    }
    if (code == "RevisionNotFound")
        throw HubError(K::NotFound, "revision " + revision_ + " not found in " + repo_id_ + from);
    if (code == "EntryNotFound" || (r.status == 404 && !file.empty()))
        throw HubError(K::NotFound, file + " not found in " + repo_id_ + at_rev + from);
    if (code == "GatedRepo")
        throw HubError(K::Unauthorized, repo_id_ + " is gated: accept its conditions at " + s_.endpoint + "/" +
                                            repo_id_ + ", then " +
                                            (s_.token.empty() ? "set HF_TOKEN to a token of that account"
                                                              : "check that HF_TOKEN is a token of that account") +
                                            from);
    if (r.status == 401)
        throw HubError(K::Unauthorized,
                       repo_id_ + ": authentication required (private or gated repository): " + token_hint + from);
    if (r.status == 403)
        throw HubError(K::Unauthorized,
                       repo_id_ + ": access denied (private or gated repository): " + token_hint + from);
    if (r.status == 404) throw HubError(K::NotFound, repo_id_ + ": not found" + from);
    throw HubError(r.status >= 500 ? K::Network : K::Http, repo_id_ + (file.empty() ? "" : ": " + file) +
                                                               ": the Hub answered HTTP " + std::to_string(r.status) +
                                                               (r.status >= 500 ? " after retries" : "") + from);
}

void Puller::check_space(const fs::path& part, std::int64_t size) const {
    if (size < 0) return;
    std::error_code ec;
    const std::int64_t have = fs::exists(part, ec) ? static_cast<std::int64_t>(fs::file_size(part, ec)) : 0;
    struct statvfs st {};
    if (::statvfs(part.parent_path().c_str(), &st) != 0) return;
    const auto free_bytes = static_cast<std::int64_t>(st.f_bavail) * static_cast<std::int64_t>(st.f_frsize);
    if (size - have > free_bytes)
        throw HubError(HubError::Kind::DiskFull, "disk full: " + part.parent_path().string() + " has " +
                                                     std::to_string(free_bytes) + " bytes free, the download needs " +
                                                     std::to_string(size - have));
}

void Puller::fetch_file(const std::string& file) {
    const fs::path pointer = repo_ / "snapshots" / commit_ / file;
    std::error_code ec;
    if (fs::is_regular_file(pointer, ec)) {  // a link into blobs/ that resolves: the same commit, the same bytes
        snap_.files.push_back(file);
        emit(Stage::Cached, file, static_cast<std::int64_t>(fs::file_size(pointer, ec)),
             static_cast<std::int64_t>(fs::file_size(pointer, ec)));
        return;
    }
    const std::string url = s_.endpoint + "/" + repo_id_ + "/resolve/" + commit_ + "/" + detail::url_quote(file, true);
    const auto on_retry = [&](const std::string& why) {
        emit(Stage::Retrying, file, current_.done, current_.total, why);
    };
    if (!emit(Stage::Downloading, file)) throw HubError(HubError::Kind::Interrupted, "interrupted before " + file);
    const Response meta = http_.fetch(
        url, true, [&] { return cancelled(); }, on_retry);
    if (meta.status >= 400) raise_for_status(meta, file);
    const std::string linked = meta.header("x-linked-etag");
    const std::string etag = detail::normalize_etag(!linked.empty() ? linked : meta.header("etag"));
    if (!safe_etag(etag))
        throw HubError(HubError::Kind::Http,
                       url + ": the answer has no usable ETag (got \"" + etag + "\"), so the file cannot be cached");
    std::int64_t size = -1;
    const std::string size_h = !meta.header("x-linked-size").empty() ? meta.header("x-linked-size")
                               : meta.status < 300                   ? meta.header("content-length")
                                                                     : "";
    if (!size_h.empty()) {
        char* end = nullptr;
        const long long v = std::strtoll(size_h.c_str(), &end, 10);
        if (end == size_h.c_str() || *end != '\0' || v < 0)
            throw HubError(HubError::Kind::Http, url + ": the answer's file size \"" + size_h + "\" is not a number");
        size = v;
    }
    const std::string location = meta.status >= 300 && !meta.header("location").empty() ? meta.header("location") : url;

    const fs::path blob = detail::blob_path(repo_, etag);
    if (!fs::exists(blob, ec)) {
        fs::create_directories(blob.parent_path());
        detail::BlobLock lock(
            s_, repo_id_, etag, [&] { return cancelled(); }, [&] { emit(Stage::Waiting, file, 0, size); });
        if (!fs::exists(blob, ec)) {  // not written meanwhile by the process we waited for
            const fs::path part = blob.string() + ".incomplete";
            check_space(part, size);
            emit(Stage::Downloading, file,
                 fs::exists(part, ec) ? static_cast<std::int64_t>(fs::file_size(part, ec)) : 0, size);
            http_.download(
                location, part, size,
                [&](std::int64_t done, std::int64_t total) { return emit(Stage::Downloading, file, done, total); },
                on_retry, [&](const Response& r) { raise_for_status(r, file); });
            // LFS files are named by their sha256, git files by their git blob sha1: check the bytes against it.
            std::string got;
            const std::string want = lower(etag);
            if (is_hex(etag, 64)) got = detail::sha256_file(part);
            else if (is_hex(etag, 40) && linked.empty()) got = detail::git_blob_sha1_file(part);
            if (!got.empty() && got != want) {
                fs::remove(part, ec);
                throw HubError(HubError::Kind::Checksum,
                               "checksum mismatch for " + file + " of " + repo_id_ + " from " + location + ": got " +
                                   (want.size() == 64 ? "sha256 " : "git sha1 ") + got + ", the Hub announced " + want +
                                   "; the download was discarded (run the pull again)");
            }
            const std::int64_t got_size = static_cast<std::int64_t>(fs::file_size(part));
            fs::rename(part, blob);
            snap_.downloaded += got_size;
        }
    }
    detail::link_into_snapshot(repo_, commit_, file, etag);
    snap_.files.push_back(file);
    emit(Stage::Cached, file, static_cast<std::int64_t>(fs::file_size(blob, ec)),
         static_cast<std::int64_t>(fs::file_size(blob, ec)));
}

Snapshot Puller::run() {
    emit(Stage::Resolving, "");
    const std::string api = s_.endpoint + "/api/models/" + repo_id_ + "/revision/" +
                            detail::url_quote(revision_, false);
    const Response r = http_.fetch(
        api, false, [&] { return cancelled(); },
        [&](const std::string& why) { emit(Stage::Retrying, "", 0, -1, why); });
    if (r.status != 200) raise_for_status(r, "");
    json info;
    try {
        info = json::parse(r.body);
    } catch (const json::exception& e) {
        throw HubError(HubError::Kind::Http, api + ": the answer is not JSON (" + e.what() + ")");
    }
    commit_ = info.is_object() && info.contains("sha") && info["sha"].is_string() ? info["sha"].get<std::string>() : "";
    if (!detail::is_commit_hash(commit_))
        throw HubError(HubError::Kind::Http, api + ": the answer has no commit \"sha\" (got \"" + commit_ + "\")");
    std::set<std::string> siblings;
    if (info.contains("siblings") && info["siblings"].is_array())
        for (const auto& sib : info["siblings"])
            if (sib.is_object() && sib.contains("rfilename") && sib["rfilename"].is_string() &&
                detail::is_safe_repo_path(sib["rfilename"].get<std::string>()))
                siblings.insert(sib["rfilename"].get<std::string>());
    if (!siblings.count("config.json"))
        throw HubError(HubError::Kind::Unsupported, repo_id_ + " at revision " + revision_ +
                                                        " has no config.json: not a model repository vit can read");
    snap_.commit = commit_;
    snap_.dir = repo_ / "snapshots" / commit_;

    fetch_file("config.json");
    const json config = detail::read_json_file(snap_.dir / "config.json", repo_id_ + ": config.json");
    std::optional<json> index;
    if (!siblings.count("model.safetensors") && siblings.count("model.safetensors.index.json")) {
        fetch_file("model.safetensors.index.json");
        index = detail::read_json_file(snap_.dir / "model.safetensors.index.json",
                                       repo_id_ + ": model.safetensors.index.json");
    }
    for (const auto& f : detail::needed_files(siblings, config, index ? &*index : nullptr, repo_id_))
        if (std::find(snap_.files.begin(), snap_.files.end(), f) == snap_.files.end()) fetch_file(f);
    detail::write_ref(repo_, revision_, commit_);
    emit(Stage::Done, "", snap_.downloaded, snap_.downloaded);
    return snap_;
}

}  // namespace

Snapshot pull(const Settings& s, const std::string& repo_id, const std::string& revision,
              const PullCallback& progress) {
    if (!is_repo_id(repo_id))
        throw HubError(
            HubError::Kind::BadRepoId,
            "'" + repo_id + "' is not a Hub model id (expected ORG/NAME, e.g. facebook/deit-tiny-patch16-224)");
    if (revision.empty() || !detail::is_safe_repo_path(revision))
        throw HubError(HubError::Kind::NotFound, "'" + revision + "' is not a revision name (a branch, tag or commit)");
    if (s.offline) {
        if (auto snap = find_cached(s, repo_id, revision)) return *snap;
        throw HubError(HubError::Kind::NotCached,
                       repo_id + (revision == "main" ? "" : " at revision " + revision) + " is not in the Hub cache " +
                           s.cache_dir.string() + " and HF_HUB_OFFLINE is set: run `vit pull " + repo_id +
                           (revision == "main" ? "" : " --revision " + revision) + "` with network access first");
    }
    Puller p(s, repo_id, revision, progress);
    return p.run();
}

}  // namespace vit::hub
