// Pieces of the Hub client shared by hub.cpp (the pull), hub_http.cpp (libcurl) and hub_cache.cpp (the cache
// layout): not part of the library's interface.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub.hpp"

typedef void CURL;
struct curl_slist;

namespace vit::hub::detail {

namespace fs = std::filesystem;

// ---- HTTP (hub_http.cpp) ----

struct Response {
    long status = 0;
    std::string url;                             // the URL that gave this response
    std::map<std::string, std::string> headers;  // lower-case names, of the last response
    std::string body;
    std::string header(const std::string& lower_name) const;
};

// Percent-encodes s (RFC 3986 unreserved characters kept; '/' kept when keep_slash).
std::string url_quote(const std::string& s, bool keep_slash);

// Returns true to stop. Checked during transfers, retries and waits.
using CancelFn = std::function<bool()>;
// Bytes in the file so far and the expected total (-1 unknown); returns false to stop.
using BytesFn = std::function<bool(std::int64_t done, std::int64_t total)>;

// One libcurl handle (connections are reused between requests). Sends the token as a Bearer header to the
// endpoint's own host only. Transient failures (HTTP 429/5xx, dropped connections, timeouts) are retried with
// exponential backoff; other failures throw HubError naming the URL.
class Http {
public:
    explicit Http(const Settings& s);
    ~Http();
    Http(const Http&) = delete;
    Http& operator=(const Http&) = delete;

    // GET (body kept, up to 64 MiB) or HEAD. Relative redirects are followed (a renamed repository), absolute
    // ones are not: the Location is in the returned response (an LFS file's CDN address). Any status comes back.
    Response fetch(const std::string& url, bool head, const CancelFn& cancelled,
                   const std::function<void(const std::string&)>& on_retry);

    // Downloads url (following redirects) into `part`, appending to what it already holds with a Range request,
    // until it holds `expected` bytes (when >= 0) or the server says the body is complete. HTTP errors go to
    // `on_error` (which throws); the bytes written so far stay in `part`.
    void download(const std::string& url, const fs::path& part, std::int64_t expected, const BytesFn& progress,
                  const std::function<void(const std::string&)>& on_retry,
                  const std::function<void(const Response&)>& on_error);

private:
    using HeaderList = std::unique_ptr<curl_slist, void (*)(curl_slist*)>;
    // Resets the handle for one request to url: vit's options, the Transfer the callbacks write to, errbuf for
    // libcurl's message, and the headers (the token for the endpoint's own origin only, then extra_header if
    // any). The returned list must outlive the transfer.
    HeaderList prepare(const std::string& url, void* transfer, char* errbuf, const char* extra_header);
    bool sleep_backoff(int failures, const CancelFn& cancelled);
    CURL* curl_;
    std::string endpoint_origin_, token_;
};

// ---- cache layout (hub_cache.cpp) ----

bool is_commit_hash(const std::string& s);     // 40 lower-case hex digits
bool is_safe_repo_path(const std::string& f);  // relative, no "..", no empty or "." components
std::string normalize_etag(std::string etag);  // drops W/ and the quotes, as huggingface_hub does

fs::path blob_path(const fs::path& repo_dir, const std::string& etag);
// snapshots/<commit>/<file> -> ../../blobs/<etag> (relative, replaced atomically).
void link_into_snapshot(const fs::path& repo_dir, const std::string& commit, const std::string& file,
                        const std::string& etag);
void write_ref(const fs::path& repo_dir, const std::string& revision, const std::string& commit);
std::optional<std::string> read_ref(const fs::path& repo_dir, const std::string& revision);

// flock on CACHE/.locks/models--ORG--NAME/<etag>.lock, the lock file huggingface_hub takes for the same blob, so
// vit and Python processes filling one cache wait for each other. Polls so that `cancelled` can stop the wait.
class BlobLock {
public:
    BlobLock(const Settings& s, const std::string& repo_id, const std::string& etag, const CancelFn& cancelled,
             const std::function<void()>& on_wait);
    ~BlobLock();
    BlobLock(const BlobLock&) = delete;
    BlobLock& operator=(const BlobLock&) = delete;

private:
    int fd_ = -1;
};

std::string sha256_file(const fs::path& p);         // lower-case hex
std::string git_blob_sha1_file(const fs::path& p);  // sha1 of "blob <size>\0" + bytes: a git file's ETag

// The files a model needs from a repository holding `available`: config.json, preprocessor_config.json when
// present, model.safetensors or the index and every shard it names (`index` must be given when only the index
// exists), and the files config.json names by a string value (labels.txt...). HubError::Unsupported when no
// safetensors weights are there.
std::vector<std::string> needed_files(const std::set<std::string>& available, const nlohmann::json& config,
                                      const nlohmann::json* index, const std::string& repo_id);

nlohmann::json read_json_file(const fs::path& p, const std::string& what);

}  // namespace vit::hub::detail
