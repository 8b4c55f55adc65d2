// HTTP for the Hub client on libcurl: small requests with relative-redirect following, and resumable downloads
// into a .incomplete file (Range requests, retries with exponential backoff on dropped connections and 5xx).
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "hub_internal.hpp"

namespace vit::hub::detail {

namespace {

constexpr int kMaxFailures = 5;              // consecutive failed attempts without progress
constexpr std::size_t kMaxBody = 64u << 20;  // API answers and error bodies kept in memory
constexpr long kConnectTimeoutS = 10;        // huggingface_hub's default request timeout
constexpr long kStallTimeoutS = 30;          // a transfer with no byte for this long is dropped and resumed

const char* kUserAgent = "vit/0.1.0; hf_hub-compatible; libcurl";

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    const auto e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

// scheme://host[:port] of an absolute URL, empty for a relative one.
std::string origin_of(const std::string& url) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) return "";
    const auto path = url.find('/', scheme + 3);
    return lower(url.substr(0, path));
}

struct Transfer {
    CURL* curl = nullptr;
    Response* resp = nullptr;
    // download state (fd < 0 for in-memory requests)
    int fd = -1;
    std::int64_t offset = 0;   // bytes in the file before this request
    std::int64_t written = 0;  // bytes in the file now
    std::int64_t expected = -1;
    bool started = false;  // the first body byte decided how to write
    bool to_file = false;  // a 200/206 body goes to the file; an error body to resp->body
    int write_errno = 0;
    bool range_mismatch = false;
    bool stop_requested = false;
    const BytesFn* progress = nullptr;
};

extern "C" size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
        t->resp->headers.clear();  // a new response (after a redirect or a 100 Continue)
    } else if (const auto colon = line.find(':'); colon != std::string::npos) {
        t->resp->headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    }
    return size * n;
}

// The first body byte of the final response decides where the body goes: a 206 continues the file at its end,
// a 200 replaces it, anything else is an error body kept in memory.
bool start_body(CURL* c, Transfer* t) {
    t->started = true;
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (t->fd < 0 || (status != 200 && status != 206)) return true;
    t->to_file = true;
    if (status == 206) {
        // Content-Range: bytes START-END/TOTAL must start where the file ends.
        const std::string cr = t->resp->header("content-range");
        long long start = -1;
        if (std::sscanf(cr.c_str(), "bytes %lld-", &start) != 1 || start != t->offset) {
            t->range_mismatch = true;
            return false;
        }
        return true;
    }
    if (t->offset > 0) {  // the server ignored the Range: start over
        if (::ftruncate(t->fd, 0) != 0 || ::lseek(t->fd, 0, SEEK_SET) != 0) {
            t->write_errno = errno;
            return false;
        }
        t->offset = t->written = 0;
    }
    return true;
}

extern "C" size_t on_body(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t len = size * n;
    if (!t->started && !start_body(t->curl, t)) return 0;
    if (!t->to_file) {
        if (t->resp->body.size() + len > kMaxBody) return 0;
        t->resp->body.append(data, len);
        return len;
    }
    size_t off = 0;
    while (off < len) {
        const ssize_t w = ::write(t->fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            t->write_errno = errno;
            return 0;
        }
        off += static_cast<size_t>(w);
    }
    t->written += static_cast<std::int64_t>(len);
    return len;
}

extern "C" int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(user);
    if (t->progress && *t->progress && !(*t->progress)(t->written, t->expected)) {
        t->stop_requested = true;
        return 1;
    }
    return 0;
}

// Errors worth another try: the connection dropped or stalled, or the server answered nothing.
bool transient(CURLcode rc) {
    switch (rc) {
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR: return true;
        default: return false;
    }
}

bool retryable_status(long s) { return s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }

std::string curl_text(CURLcode rc, const char* errbuf) {
    return (errbuf && *errbuf) ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
}

std::once_flag g_curl_init;

}  // namespace

std::string Response::header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
}

std::string url_quote(const std::string& s, bool keep_slash) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

Http::Http(const Settings& s) : endpoint_origin_(origin_of(s.endpoint)), token_(s.token) {
    std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
    if (!curl_) throw HubError(HubError::Kind::Network, "cannot start libcurl (curl_easy_init failed)");
}

Http::~Http() { curl_easy_cleanup(curl_); }

Http::HeaderList Http::prepare(const std::string& url, void* transfer, char* errbuf, const char* extra_header) {
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, kUserAgent);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutS);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, kStallTimeoutS);
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, transfer);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, transfer);
    curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, transfer);
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf);
    HeaderList hdrs(nullptr, curl_slist_free_all);
    // libcurl drops a custom Authorization header when a redirect leaves this host.
    if (!token_.empty() && origin_of(url) == endpoint_origin_)
        hdrs.reset(curl_slist_append(hdrs.release(), ("Authorization: Bearer " + token_).c_str()));
    if (extra_header) hdrs.reset(curl_slist_append(hdrs.release(), extra_header));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, hdrs.get());
    return hdrs;
}

bool Http::sleep_backoff(int failures, const CancelFn& cancelled) {
    // 0.5 s, 1 s, 2 s, 4 s, 8 s: huggingface_hub's http_backoff schedule, capped.
    const auto wait = std::chrono::milliseconds(std::min(8000, 500 << std::min(failures - 1, 4)));
    const auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
        if (cancelled && cancelled()) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
}

Response Http::fetch(const std::string& url0, bool head, const CancelFn& cancelled,
                     const std::function<void(const std::string&)>& on_retry) {
    std::string url = url0;
    int failures = 0, redirects = 0;
    for (;;) {
        Response r;
        r.url = url;
        Transfer t;
        t.curl = curl_;
        t.resp = &r;
        BytesFn progress = [&](std::int64_t, std::int64_t) { return !(cancelled && cancelled()); };
        t.progress = &progress;
        char errbuf[CURL_ERROR_SIZE] = {0};
        HeaderList hdrs = prepare(url, &t, errbuf, "Accept-Encoding: identity");
        curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 120L);
        if (head) curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
        const CURLcode rc = curl_easy_perform(curl_);
        curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.status);
        hdrs.reset();
        if (t.stop_requested) throw HubError(HubError::Kind::Interrupted, "interrupted while requesting " + url);
        std::string why;
        if (rc == CURLE_OK) {
            if (r.status >= 300 && r.status < 400 && redirects < 10) {
                const std::string loc = r.header("location");
                if (!loc.empty() && loc[0] == '/' && (loc.size() < 2 || loc[1] != '/')) {
                    url = origin_of(url) + loc;  // a renamed repository: follow; a CDN address is returned
                    ++redirects;
                    continue;
                }
            }
            if (!retryable_status(r.status)) return r;
            why = "HTTP " + std::to_string(r.status) + " from " + url;
        } else if (transient(rc)) {
            why = curl_text(rc, errbuf) + " (" + url + ")";
        } else {
            throw HubError(HubError::Kind::Network,
                           "cannot reach " + url + ": " + curl_text(rc, errbuf) +
                               " (without a network, cached models work with HF_HUB_OFFLINE=1)");
        }
        if (++failures >= kMaxFailures) {
            if (rc == CURLE_OK) return r;  // the caller names the status
            throw HubError(HubError::Kind::Network,
                           "giving up on " + url + " after " + std::to_string(failures) + " attempts: " + why);
        }
        if (on_retry) on_retry(why);
        if (!sleep_backoff(failures, cancelled))
            throw HubError(HubError::Kind::Interrupted, "interrupted while requesting " + url);
    }
}

void Http::download(const std::string& url, const fs::path& part, std::int64_t expected, const BytesFn& progress,
                    const std::function<void(const std::string&)>& on_retry,
                    const std::function<void(const Response&)>& on_error) {
    const int fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        throw HubError(errno == ENOSPC ? HubError::Kind::DiskFull : HubError::Kind::Network,
                       "cannot create " + part.string() + ": " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    std::int64_t shown = 0;
    const CancelFn cancelled = [&] { return progress && !progress(shown, expected); };
    int failures = 0;
    for (;;) {
        const std::int64_t offset = ::lseek(fd, 0, SEEK_END);
        shown = offset;
        if (expected >= 0 && offset == expected) break;
        if (expected >= 0 && offset > expected) {  // not the file announced: start again
            if (::ftruncate(fd, 0) != 0)
                throw HubError(HubError::Kind::DiskFull, part.string() + ": " + std::strerror(errno));
            continue;
        }
        Response r;
        r.url = url;
        Transfer t;
        t.curl = curl_;
        t.resp = &r;
        t.fd = fd;
        t.offset = t.written = offset;
        t.expected = expected;
        t.progress = &progress;
        char errbuf[CURL_ERROR_SIZE] = {0};
        HeaderList hdrs = prepare(url, &t, errbuf, nullptr);
        curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(curl_, CURLOPT_MAXREDIRS, 10L);
        const std::string range = std::to_string(offset) + "-";
        if (offset > 0) curl_easy_setopt(curl_, CURLOPT_RANGE, range.c_str());
        const CURLcode rc = curl_easy_perform(curl_);
        curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.status);
        {
            char* eff = nullptr;
            if (curl_easy_getinfo(curl_, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) r.url = eff;
        }
        hdrs.reset();
        if (t.write_errno) {
            const bool full = t.write_errno == ENOSPC || t.write_errno == EDQUOT;
            throw HubError(full ? HubError::Kind::DiskFull : HubError::Kind::Network,
                           std::string(full ? "disk full: " : "") + "cannot write " + part.string() + ": " +
                               std::strerror(t.write_errno) + " (the partial download is kept and resumes next time)");
        }
        if (t.stop_requested)
            throw HubError(HubError::Kind::Interrupted, "interrupted: the download of " + url + " stopped at " +
                                                            std::to_string(t.written) + " bytes, kept in " +
                                                            part.string());
        const std::int64_t now = t.written;
        shown = now;
        std::string why;
        if (t.range_mismatch) {
            if (::ftruncate(fd, 0) != 0)
                throw HubError(HubError::Kind::DiskFull, part.string() + ": " + std::strerror(errno));
            why = "the server answered the range request from another offset (" + r.header("content-range") + ")";
        } else if (rc == CURLE_OK || rc == CURLE_WRITE_ERROR) {
            if (r.status == 416) {  // the range starts at or past the end: what is there is not the file
                if (::ftruncate(fd, 0) != 0)
                    throw HubError(HubError::Kind::DiskFull, part.string() + ": " + std::strerror(errno));
                why = "HTTP 416 for a resume at byte " + std::to_string(offset);
            } else if (r.status >= 400 && !retryable_status(r.status)) {
                on_error(r);
                throw HubError(HubError::Kind::Http, "HTTP " + std::to_string(r.status) + " from " + r.url);
            } else if (r.status >= 400) {
                why = "HTTP " + std::to_string(r.status) + " from " + r.url;
            } else if (rc == CURLE_WRITE_ERROR) {
                why = "the response body was larger than expected";
            } else if (expected < 0 || now == expected) {
                break;
            } else if (now > expected) {
                if (::ftruncate(fd, 0) != 0)
                    throw HubError(HubError::Kind::DiskFull, part.string() + ": " + std::strerror(errno));
                throw HubError(HubError::Kind::Checksum, url + ": the server sent " + std::to_string(now) +
                                                             " bytes, the Hub announced " + std::to_string(expected));
            } else {
                why = "the transfer ended at byte " + std::to_string(now) + " of " + std::to_string(expected);
            }
        } else if (transient(rc)) {
            why = curl_text(rc, errbuf) + " at byte " + std::to_string(now) + " (" + r.url + ")";
        } else {
            throw HubError(HubError::Kind::Network, "cannot download " + url + ": " + curl_text(rc, errbuf) +
                                                        " (the partial download is kept and resumes next time)");
        }
        failures = now > offset ? 1 : failures + 1;  // a try that brought bytes starts the count again
        if (failures >= kMaxFailures)
            throw HubError(HubError::Kind::Network, "giving up on " + url + " after " + std::to_string(failures) +
                                                        " attempts without progress: " + why);
        if (on_retry) on_retry(why);
        if (!sleep_backoff(failures, cancelled))
            throw HubError(HubError::Kind::Interrupted, "interrupted: the download of " + url + " stopped at " +
                                                            std::to_string(now) + " bytes, kept in " + part.string());
    }
    if (::fsync(fd) != 0)
        throw HubError(HubError::Kind::DiskFull, "cannot write " + part.string() + ": " + std::strerror(errno));
}

}  // namespace vit::hub::detail
