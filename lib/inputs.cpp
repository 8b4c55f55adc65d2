// Input enumeration: deterministic directory order, lazy list reading, sharding and resume filtering.
#include "inputs.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>

namespace vit {

namespace fs = std::filesystem;

void parse_shard(const std::string& s, std::int64_t& k, std::int64_t& n) {
    const auto slash = s.find('/');
    auto bad = [&] { return std::invalid_argument("--shard \"" + s + "\" is not K/N with 0 <= K < N"); };
    if (slash == std::string::npos || slash == 0 || slash + 1 == s.size()) throw bad();
    const std::string a = s.substr(0, slash), b = s.substr(slash + 1);
    auto digits = [](const std::string& x) { return !x.empty() && x.size() < 12 && std::all_of(x.begin(), x.end(), ::isdigit); };
    if (!digits(a) || !digits(b)) throw bad();
    k = std::stoll(a);
    n = std::stoll(b);
    if (n <= 0 || k >= n) throw bad();
}

std::vector<std::string> parse_extensions(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    auto flush = [&] {
        if (cur.empty()) return;
        if (cur[0] != '.') cur = "." + cur;
        std::transform(cur.begin(), cur.end(), cur.begin(), [](unsigned char c) { return std::tolower(c); });
        out.push_back(cur);
        cur.clear();
    };
    for (char c : s) {
        if (c == ',' || c == ' ') flush();
        else cur += c;
    }
    flush();
    return out;
}

InputList::InputList(std::vector<std::string> args, InputOptions opt) : args_(std::move(args)), opt_(std::move(opt)) {}

bool InputList::wanted_ext(const std::string& path) const {
    std::string ext = fs::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return std::find(opt_.extensions.begin(), opt_.extensions.end(), ext) != opt_.extensions.end();
}

void InputList::expand_dir(const std::string& dir, std::vector<std::string>& out,
                           std::set<std::pair<std::uint64_t, std::uint64_t>>& seen, int depth) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && !seen.insert({st.st_dev, st.st_ino}).second) {
        if (warn) warn(dir + ": directory already visited (symlink loop?), skipped");
        return;
    }
    std::vector<std::pair<std::string, bool>> entries;   // (path, is_dir)
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    if (ec) {
        if (warn) warn(dir + ": cannot read directory: " + ec.message());
        return;
    }
    for (; it != end; it.increment(ec)) {
        if (ec) {
            if (warn) warn(dir + ": error while listing: " + ec.message());
            break;
        }
        std::error_code e2;
        const bool is_dir = it->is_directory(e2);   // follows symlinks
        std::string p = it->path().string();
        entries.emplace_back(std::move(p), is_dir);
    }
    std::sort(entries.begin(), entries.end());
    for (auto& [p, is_dir] : entries) {
        if (is_dir) {
            if (opt_.recursive) expand_dir(p, out, seen, depth + 1);
        } else if (wanted_ext(p)) {
            out.push_back(p);
        }
    }
}

bool InputList::next_unfiltered(std::string& path) {
    for (;;) {
        if (pending_pos_ < pending_.size()) {
            path = std::move(pending_[pending_pos_++]);
            return true;
        }
        pending_.clear();
        pending_pos_ = 0;
        if (arg_pos_ < args_.size()) {
            const std::string& a = args_[arg_pos_++];
            std::error_code ec;
            if (a != "-" && fs::is_directory(a, ec)) {
                std::set<std::pair<std::uint64_t, std::uint64_t>> seen;
                expand_dir(a, pending_, seen, 0);
                continue;
            }
            path = a;   // a file, "-" (stdin) or something missing: the decoder reports what is wrong
            return true;
        }
        if (opt_.list) {
            std::string line;
            while (std::getline(*opt_.list, line, opt_.list_delim)) {
                if (opt_.list_delim == '\n' && !line.empty() && line.back() == '\r') line.pop_back();
                if (line.empty()) continue;
                path = std::move(line);
                return true;
            }
            opt_.list = nullptr;
        }
        return false;
    }
}

bool InputList::next(std::string& path, std::uint64_t& position) {
    while (next_unfiltered(path)) {
        const std::uint64_t pos = position_++;
        const auto block = pos / static_cast<std::uint64_t>(std::max<std::int64_t>(1, opt_.shard_block));
        if (static_cast<std::int64_t>(block % static_cast<std::uint64_t>(opt_.shard_count)) != opt_.shard_index) continue;
        position = pos;
        if (opt_.skip && opt_.skip->count(path)) continue;
        return true;
    }
    return false;
}

}  // namespace vit
