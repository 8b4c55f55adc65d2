// The Hub client's offline parts: settings from the environment, repo ids, the files a model needs, checksums,
// the cache layout and lookups without the network (the downloads are tested by tests/cli/test_pull.sh).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "hub_internal.hpp"
#include "test_util.hpp"

using namespace vit::hub;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Sets environment variables for one scope and restores them after.
class Env {
public:
    void set(const char* name, const char* value) {
        const char* old = std::getenv(name);
        saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
        if (value) ::setenv(name, value, 1);
        else ::unsetenv(name);
    }
    ~Env() {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
            if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1);
            else ::unsetenv(it->first.c_str());
        }
    }

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

const char* kHfVars[] = {
    "HF_ENDPOINT", "HF_HUB_CACHE",           "HUGGINGFACE_HUB_CACHE", "HF_HOME",        "XDG_CACHE_HOME",
    "HF_TOKEN",    "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH",         "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"};

void write(const fs::path& p, const std::string& s) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << s;
}

}  // namespace

TEST_CASE("settings follow huggingface_hub's environment variables and their precedence") {
    Env env;
    for (const char* v : kHfVars) env.set(v, nullptr);
    env.set("HOME", "/home/u");
    Settings s = Settings::from_env();
    CHECK(s.endpoint == "https://huggingface.co");
    CHECK(s.cache_dir == fs::path("/home/u/.cache/huggingface/hub"));
    CHECK(s.token.empty());
    CHECK_FALSE(s.offline);

    env.set("XDG_CACHE_HOME", "/xdg");
    CHECK(Settings::from_env().cache_dir == fs::path("/xdg/huggingface/hub"));
    env.set("HF_HOME", "/hf");
    CHECK(Settings::from_env().cache_dir == fs::path("/hf/hub"));
    env.set("HF_HUB_CACHE", "/cache");
    env.set("HF_ENDPOINT", "http://127.0.0.1:8080/");
    env.set("HF_HUB_OFFLINE", "yes");
    s = Settings::from_env();
    CHECK(s.cache_dir == fs::path("/cache"));
    CHECK(s.endpoint == "http://127.0.0.1:8080");  // trailing '/' dropped
    CHECK(s.offline);
    env.set("HF_HUB_OFFLINE", "0");
    CHECK_FALSE(Settings::from_env().offline);

    // The token: HF_TOKEN, else the file huggingface-cli login writes.
    const vit::test::TempDir dir("hub_token");
    write(dir / "token", "hf_from_file\n");
    env.set("HF_TOKEN_PATH", (dir / "token").c_str());
    CHECK(Settings::from_env().token == "hf_from_file");
    env.set("HF_TOKEN", "hf_env");
    CHECK(Settings::from_env().token == "hf_env");
}

TEST_CASE("repo ids as the Hub accepts them; the cache folder name") {
    for (const char* ok :
         {"facebook/deit-tiny-patch16-224", "timm/vit_base_patch16_224.augreg_in21k", "a/b", "Org_1/x.y"})
        CHECK_MESSAGE(is_repo_id(ok), ok);
    for (const char* bad :
         {"deit", "a/b/c", "/abs", "rel/", "a--b/c", "a/b..c", "a/-b", "a/b.git", "./x", "../x", "a/b c", ""})
        CHECK_MESSAGE(!is_repo_id(bad), bad);
    Settings s;
    s.cache_dir = "/c";
    CHECK(repo_folder(s, "facebook/deit-tiny-patch16-224") == fs::path("/c/models--facebook--deit-tiny-patch16-224"));
}

TEST_CASE("etags, paths and URLs") {
    using namespace vit::hub::detail;
    CHECK(normalize_etag("W/\"abc\"") == "abc");
    CHECK(normalize_etag("\"0123\"") == "0123");
    CHECK(is_safe_repo_path("a/b.txt"));
    for (const char* bad : {"../x", "a/../b", "/etc/passwd", "a//b", "a/", "./a", ""})
        CHECK_MESSAGE(!is_safe_repo_path(bad), bad);
    CHECK(url_quote("refs/pr/1", false) == "refs%2Fpr%2F1");
    CHECK(url_quote("dir/a b.json", true) == "dir/a%20b.json");
    CHECK(is_commit_hash(std::string(40, 'a')));
    CHECK_FALSE(is_commit_hash(std::string(40, 'A')));
}

TEST_CASE("checksums: sha256 (LFS etag) and git blob sha1 (git etag)") {
    const vit::test::TempDir tmp("hub_sum");
    const fs::path p = tmp / "f";
    write(p, "hello\n");
    // sha256sum and `git hash-object` of "hello\n"
    CHECK(detail::sha256_file(p) == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    CHECK(detail::git_blob_sha1_file(p) == "ce013625030ba8dba906f756967f9e9ca394464a");
}

TEST_CASE("the files a model needs") {
    using detail::needed_files;
    const json cfg = {{"model_type", "vit"}};
    CHECK(needed_files({"config.json", "model.safetensors", "pytorch_model.bin", "README.md", "flax_model.msgpack"},
                       cfg, nullptr, "o/n") == std::vector<std::string>{"config.json", "model.safetensors"});
    CHECK(needed_files({"config.json", "preprocessor_config.json", "model.safetensors"}, cfg, nullptr, "o/n") ==
          std::vector<std::string>{"config.json", "preprocessor_config.json", "model.safetensors"});
    // The project's format names its labels and weights file.
    const json own = {{"model", json::object()}, {"labels", "labels.txt"}, {"weights", "vit.safetensors"}};
    CHECK(needed_files({"config.json", "labels.txt", "vit.safetensors", "reference.safetensors"}, own, nullptr,
                       "o/n") == std::vector<std::string>{"config.json", "labels.txt", "vit.safetensors"});
    // Sharded: the index first (the caller fetches it), then every shard it names, once.
    const std::set<std::string> sharded{"config.json", "model.safetensors.index.json", "s1.safetensors",
                                        "s2.safetensors"};
    CHECK(needed_files(sharded, cfg, nullptr, "o/n") ==
          std::vector<std::string>{"config.json", "model.safetensors.index.json"});
    const json index = {{"weight_map", {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}, {"c", "s1.safetensors"}}}};
    CHECK(needed_files(sharded, cfg, &index, "o/n") ==
          std::vector<std::string>{"config.json", "model.safetensors.index.json", "s1.safetensors", "s2.safetensors"});
    const json bad_index = {{"weight_map", {{"a", "s3.safetensors"}}}};
    CHECK_THROWS_WITH_AS(needed_files(sharded, cfg, &bad_index, "o/n"),
                         "o/n: model.safetensors.index.json names s3.safetensors, which the repository does not have",
                         HubError);
    const json evil_index = {{"weight_map", {{"a", "../../x.safetensors"}}}};
    CHECK_THROWS_AS(needed_files(sharded, cfg, &evil_index, "o/n"), HubError);
    // Pickle weights only: refused with a pointer at the exporter.
    try {
        needed_files({"config.json", "pytorch_model.bin"}, cfg, nullptr, "o/n");
        FAIL("expected HubError");
    } catch (const HubError& e) {
        CHECK(e.kind == HubError::Kind::Unsupported);
        CHECK(std::string(e.what()).find("pytorch_model.bin: vit reads safetensors weights only") != std::string::npos);
        CHECK(std::string(e.what()).find("scripts/export_weights.py") != std::string::npos);
    }
    CHECK_THROWS_WITH_AS(needed_files({"config.json"}, cfg, nullptr, "o/n"),
                         "o/n has no model.safetensors or model.safetensors.index.json: not a model vit can read",
                         HubError);
}

TEST_CASE("offline: a complete snapshot is found through refs/, an incomplete one is not") {
    Settings s;
    const vit::test::TempDir tmp("hub_cache");
    s.cache_dir = tmp.path();
    s.offline = true;
    const std::string commit(40, 'c');
    const fs::path repo = repo_folder(s, "o/n");
    write(repo / "blobs" / "e1", R"({"model_type": "vit"})");
    detail::link_into_snapshot(repo, commit, "config.json", "e1");
    CHECK(fs::read_symlink(repo / "snapshots" / commit / "config.json") == fs::path("../../blobs/e1"));
    detail::write_ref(repo, "main", commit);
    CHECK(detail::read_ref(repo, "main") == commit);

    CHECK_FALSE(find_cached(s, "o/n").has_value());  // no weights yet
    try {
        pull(s, "o/n");
        FAIL("expected HubError");
    } catch (const HubError& e) {
        CHECK(e.kind == HubError::Kind::NotCached);
        CHECK(std::string(e.what()).find("run `vit pull o/n` with network access first") != std::string::npos);
    }
    // A link whose blob is missing (an interrupted download) does not count.
    detail::link_into_snapshot(repo, commit, "model.safetensors", "e2");
    CHECK_FALSE(find_cached(s, "o/n").has_value());
    write(repo / "blobs" / "e2", "weights");
    const auto snap = find_cached(s, "o/n");
    REQUIRE(snap.has_value());
    CHECK(snap->dir == repo / "snapshots" / commit);
    CHECK(pull(s, "o/n").dir == snap->dir);                // offline pull = the cached snapshot
    CHECK(find_cached(s, "o/n", commit).has_value());      // by commit, without a ref
    CHECK_FALSE(find_cached(s, "o/n", "v2").has_value());  // an unknown ref

    const auto listed = list_cached(s);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].repo_id == "o/n");
    CHECK(listed[0].refs == std::vector<std::string>{"main"});
    CHECK(listed[0].size == 21 + 7);
    CHECK(listed[0].complete);
}
