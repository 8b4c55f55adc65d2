// The Hub cache on disk, laid out as huggingface_hub lays it out: settings from the environment, repo folders,
// blobs named by etag, relative snapshot symlinks, refs, blob locks, the files a model needs, offline lookup and
// the listing.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "hub_internal.hpp"

namespace vit::hub {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

// huggingface_hub's _is_true: 1, ON, YES, TRUE in any case.
bool env_true(const std::string& v) {
    std::string u = v;
    std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) { return std::toupper(c); });
    return u == "1" || u == "ON" || u == "YES" || u == "TRUE";
}

fs::path expand_home(const std::string& p) {
    if (!p.empty() && p[0] == '~') return fs::path(env("HOME")) / p.substr(p.size() > 1 && p[1] == '/' ? 2 : 1);
    return p;
}

bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }
bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// One part of ORG/NAME, as huggingface_hub's validate_repo_id accepts it.
bool repo_part_ok(const std::string& p, std::size_t max_len) {
    if (p.empty() || p.size() > max_len || !word_char(p.front()) || !word_char(p.back())) return false;
    return std::all_of(p.begin(), p.end(), name_char);
}

}  // namespace

Settings Settings::from_env() {
    Settings s;
    if (const std::string e = env("HF_ENDPOINT"); !e.empty()) {
        s.endpoint = e;
        while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
    }
    const std::string xdg = env("XDG_CACHE_HOME");
    const fs::path hf_home = !env("HF_HOME").empty()
                                 ? expand_home(env("HF_HOME"))
                                 : (xdg.empty() ? expand_home("~/.cache") : fs::path(xdg)) / "huggingface";
    if (!env("HF_HUB_CACHE").empty()) s.cache_dir = expand_home(env("HF_HUB_CACHE"));
    else if (!env("HUGGINGFACE_HUB_CACHE").empty()) s.cache_dir = expand_home(env("HUGGINGFACE_HUB_CACHE"));
    else s.cache_dir = hf_home / "hub";
    s.token = env("HF_TOKEN");
    if (s.token.empty()) s.token = env("HUGGING_FACE_HUB_TOKEN");
    if (s.token.empty()) {
        const fs::path token_file = !env("HF_TOKEN_PATH").empty() ? expand_home(env("HF_TOKEN_PATH"))
                                                                  : hf_home / "token";
        std::ifstream in(token_file);
        std::string t;
        if (in && std::getline(in, t)) {
            while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
            s.token = t;
        }
    }
    s.offline = env_true(env("HF_HUB_OFFLINE")) || env_true(env("TRANSFORMERS_OFFLINE"));
    return s;
}

bool is_repo_id(const std::string& s) {
    const auto slash = s.find('/');
    if (slash == std::string::npos || s.find('/', slash + 1) != std::string::npos) return false;
    if (s.find("--") != std::string::npos || s.find("..") != std::string::npos) return false;
    if (s.size() >= 4 && s.compare(s.size() - 4, 4, ".git") == 0) return false;
    return repo_part_ok(s.substr(0, slash), 96) && repo_part_ok(s.substr(slash + 1), 96);
}

fs::path repo_folder(const Settings& s, const std::string& repo_id) {
    std::string name = "models--" + repo_id;
    const auto slash = name.find('/');
    if (slash != std::string::npos) name.replace(slash, 1, "--");
    return s.cache_dir / name;
}

namespace detail {

bool is_commit_hash(const std::string& s) {
    return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
               return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
           });
}

bool is_safe_repo_path(const std::string& f) {
    if (f.empty() || f[0] == '/' || f.find('\\') != std::string::npos || f.find('\0') != std::string::npos)
        return false;
    std::stringstream ss(f);
    std::string part;
    while (std::getline(ss, part, '/'))
        if (part.empty() || part == "." || part == "..") return false;
    return f.back() != '/';
}

std::string normalize_etag(std::string etag) {
    if (etag.rfind("W/", 0) == 0) etag.erase(0, 2);
    etag.erase(std::remove(etag.begin(), etag.end(), '"'), etag.end());
    return etag;
}

fs::path blob_path(const fs::path& repo_dir, const std::string& etag) { return repo_dir / "blobs" / etag; }

namespace {

// Writes `content` to `target` through a temporary file and a rename, so readers see the old or the new file.
void write_atomically(const fs::path& target, const std::string& content) {
    fs::create_directories(target.parent_path());
    const fs::path tmp = target.string() + ".tmp." + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << content;
        if (!(out.flush()))
            throw HubError(HubError::Kind::DiskFull, "cannot write " + tmp.string() + ": " + std::strerror(errno));
    }
    fs::rename(tmp, target);
}

}  // namespace

void link_into_snapshot(const fs::path& repo_dir, const std::string& commit, const std::string& file,
                        const std::string& etag) {
    const fs::path pointer = repo_dir / "snapshots" / commit / file;
    fs::create_directories(pointer.parent_path());
    // os.path.relpath(blob, dirname(pointer)), as huggingface_hub's _create_symlink writes it.
    const fs::path target = blob_path(repo_dir, etag).lexically_relative(pointer.parent_path());
    const fs::path tmp = pointer.string() + ".tmp." + std::to_string(::getpid());
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_symlink(target, tmp);
    fs::rename(tmp, pointer);
}

void write_ref(const fs::path& repo_dir, const std::string& revision, const std::string& commit) {
    if (revision == commit) return;
    if (read_ref(repo_dir, revision) == commit) return;
    write_atomically(repo_dir / "refs" / revision, commit);
}

std::optional<std::string> read_ref(const fs::path& repo_dir, const std::string& revision) {
    if (!is_safe_repo_path(revision)) return std::nullopt;
    std::ifstream in(repo_dir / "refs" / revision);
    std::string commit;
    if (!in || !std::getline(in, commit)) return std::nullopt;
    while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
    if (!is_commit_hash(commit)) return std::nullopt;
    return commit;
}

BlobLock::BlobLock(const Settings& s, const std::string& repo_id, const std::string& etag, const CancelFn& cancelled,
                   const std::function<void()>& on_wait) {
    const fs::path dir = s.cache_dir / ".locks" / repo_folder(s, repo_id).filename();
    fs::create_directories(dir);
    const fs::path p = dir / (etag + ".lock");
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
        throw HubError(HubError::Kind::DiskFull,
                       "cannot create the lock file " + p.string() + ": " + std::strerror(errno));
    bool told = false;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            const int e = errno;
            ::close(fd_);
            throw HubError(HubError::Kind::DiskFull, "cannot lock " + p.string() + ": " + std::strerror(e));
        }
        if (!told && on_wait) on_wait();
        told = true;
        if (cancelled && cancelled()) {
            ::close(fd_);
            throw HubError(HubError::Kind::Interrupted,
                           "interrupted while waiting for another download (" + p.string() + ")");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

BlobLock::~BlobLock() {
    if (fd_ >= 0) ::close(fd_);  // closing drops the flock
}

namespace {

std::string digest_file(const fs::path& p, const EVP_MD* md_type, const std::string& prefix) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw HubError(HubError::Kind::Checksum, "cannot read " + p.string() + " to check its checksum");
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(ctx.get(), md_type, nullptr);
    EVP_DigestUpdate(ctx.get(), prefix.data(), prefix.size());
    std::vector<char> buf(1 << 20);
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(in.gcount()));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

}  // namespace

std::string sha256_file(const fs::path& p) { return digest_file(p, EVP_sha256(), ""); }

std::string git_blob_sha1_file(const fs::path& p) {
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    return digest_file(p, EVP_sha1(), "blob " + std::to_string(size) + std::string(1, '\0'));
}

json read_json_file(const fs::path& p, const std::string& what) {
    std::ifstream in(p);
    if (!in) throw ModelError(what + ": cannot read " + p.string());
    try {
        return json::parse(in);
    } catch (const json::exception& e) {
        throw ModelError(what + ": not valid JSON (" + e.what() + ")");
    }
}

namespace {

bool is_pickle_weights(const std::string& f) {
    for (const char* ext : {".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".pkl"}) {
        const std::string e(ext);
        if (f.size() >= e.size() && f.compare(f.size() - e.size(), e.size(), e) == 0) return true;
    }
    return false;
}

bool ends_with(const std::string& s, const std::string& e) {
    return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

// String values anywhere in config.json that name a file of the repository (labels.txt, a weights file...).
void named_files(const json& j, const std::set<std::string>& available, std::set<std::string>& out) {
    if (j.is_string()) {
        const std::string& v = j.get_ref<const std::string&>();
        if (v.size() < 256 && available.count(v) && !is_pickle_weights(v)) out.insert(v);
    } else if (j.is_object() || j.is_array()) {
        for (const auto& x : j) named_files(x, available, out);
    }
}

}  // namespace

std::vector<std::string> needed_files(const std::set<std::string>& available, const json& config, const json* index,
                                      const std::string& repo_id) {
    std::vector<std::string> out{"config.json"};
    if (available.count("preprocessor_config.json")) out.push_back("preprocessor_config.json");
    std::set<std::string> named;
    named_files(config, available, named);
    if (available.count("model.safetensors")) {
        out.push_back("model.safetensors");
    } else if (available.count("model.safetensors.index.json")) {
        out.push_back("model.safetensors.index.json");
        if (!index) return out;  // the caller reads the index and asks again
        const json* map = index->contains("weight_map") ? &index->at("weight_map") : nullptr;
        if (!map || !map->is_object() || map->empty())
            throw HubError(HubError::Kind::Unsupported,
                           repo_id + ": model.safetensors.index.json has no \"weight_map\" object");
        std::set<std::string> shards;
        for (const auto& v : *map) {
            if (!v.is_string() || !is_safe_repo_path(v.get<std::string>()))
                throw HubError(HubError::Kind::Unsupported,
                               repo_id + ": model.safetensors.index.json names a bad shard " + v.dump());
            shards.insert(v.get<std::string>());
        }
        for (const auto& s : shards) {
            if (!available.count(s))
                throw HubError(HubError::Kind::Unsupported, repo_id + ": model.safetensors.index.json names " + s +
                                                                ", which the repository does not have");
            out.push_back(s);
        }
    }
    for (const auto& f : named)
        if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
    if (std::none_of(out.begin(), out.end(), [](const std::string& f) { return ends_with(f, ".safetensors"); })) {
        for (const auto& f : available)
            if (is_pickle_weights(f))
                throw HubError(
                    HubError::Kind::Unsupported,
                    repo_id + " has weights only as " + f +
                        ": vit reads safetensors weights only. Convert them with "
                        "scripts/export_weights.py (needs PyTorch), or pick a repository that has model.safetensors");
        throw HubError(HubError::Kind::Unsupported,
                       repo_id + " has no model.safetensors or model.safetensors.index.json: not a model vit can read");
    }
    return out;
}

namespace {

// Files of a snapshot folder whose link resolves, relative to it.
std::set<std::string> snapshot_files(const fs::path& dir) {
    std::set<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
        if (fs::is_regular_file(it->path(), ec)) out.insert(it->path().lexically_relative(dir).generic_string());
    return out;
}

// What the model in a snapshot folder lacks (empty: complete).
std::vector<std::string> missing_in_snapshot(const fs::path& dir, const std::string& repo_id) {
    const std::set<std::string> have = snapshot_files(dir);
    if (!have.count("config.json")) return {"config.json"};
    const json config = read_json_file(dir / "config.json", repo_id + ": config.json");
    std::optional<json> index;
    if (!have.count("model.safetensors") && have.count("model.safetensors.index.json"))
        index = read_json_file(dir / "model.safetensors.index.json", repo_id + ": model.safetensors.index.json");
    std::vector<std::string> missing;
    for (const auto& f : needed_files(have, config, index ? &*index : nullptr, repo_id))
        if (!have.count(f)) missing.push_back(f);
    return missing;
}

}  // namespace

}  // namespace detail

std::optional<Snapshot> find_cached(const Settings& s, const std::string& repo_id, const std::string& revision) {
    const fs::path repo = repo_folder(s, repo_id);
    const std::optional<std::string> commit = detail::is_commit_hash(revision) ? revision
                                                                               : detail::read_ref(repo, revision);
    if (!commit) return std::nullopt;
    const fs::path dir = repo / "snapshots" / *commit;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return std::nullopt;
    try {
        if (!detail::missing_in_snapshot(dir, repo_id).empty()) return std::nullopt;
    } catch (const ModelError&) {
        return std::nullopt;
    }
    Snapshot snap;
    snap.dir = dir;
    snap.commit = *commit;
    for (const auto& f : detail::snapshot_files(dir)) snap.files.push_back(f);
    return snap;
}

std::vector<CachedModel> list_cached(const Settings& s) {
    std::vector<CachedModel> out;
    std::error_code ec;
    for (const auto& repo : fs::directory_iterator(s.cache_dir, ec)) {
        const std::string name = repo.path().filename().string();
        if (name.rfind("models--", 0) != 0 || !repo.is_directory(ec)) continue;
        std::string repo_id = name.substr(8);
        if (const auto sep = repo_id.find("--"); sep != std::string::npos) repo_id.replace(sep, 2, "/");
        std::map<std::string, std::vector<std::string>> refs;  // commit -> names
        const fs::path refs_dir = repo.path() / "refs";
        for (auto it = fs::recursive_directory_iterator(refs_dir, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec)) {
            if (!it->is_regular_file(ec)) continue;
            const std::string ref = it->path().lexically_relative(refs_dir).generic_string();
            if (const auto c = detail::read_ref(repo.path(), ref)) refs[*c].push_back(ref);
        }
        ec.clear();
        for (const auto& snap : fs::directory_iterator(repo.path() / "snapshots", ec)) {
            if (!snap.is_directory(ec)) continue;
            CachedModel m;
            m.repo_id = repo_id;
            m.commit = snap.path().filename().string();
            m.refs = refs[m.commit];
            m.dir = snap.path();
            for (const auto& f : detail::snapshot_files(m.dir))
                m.size += static_cast<std::int64_t>(fs::file_size(m.dir / f, ec));
            try {
                m.complete = detail::missing_in_snapshot(m.dir, repo_id).empty();
            } catch (const ModelError&) {
                m.complete = false;
            }
            out.push_back(std::move(m));
        }
        ec.clear();
    }
    std::sort(out.begin(), out.end(), [](const CachedModel& a, const CachedModel& b) {
        return a.repo_id != b.repo_id ? a.repo_id < b.repo_id : a.commit < b.commit;
    });
    return out;
}

}  // namespace vit::hub
