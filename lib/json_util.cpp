// Bounded JSON parsing, message helpers and small-file reading (see json_util.hpp).
#include "json_util.hpp"

#include <fstream>
#include <set>
#include <vector>

namespace vit {

std::string brief(const nlohmann::json& v) {
    std::string s;
    if (v.is_structured()) {
        bool flat = v.size() <= 16;
        for (const auto& e : v) flat = flat && !e.is_structured();
        s = flat ? v.dump() : std::string(v.type_name()) + " of " + std::to_string(v.size()) + " elements";
    } else {
        s = v.dump();
    }
    return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

namespace {

class BoundedCheck : public nlohmann::json_sax<nlohmann::json> {
public:
    BoundedCheck(const JsonLimits& limits, bool find_duplicates) : limits_(limits), find_duplicates_(find_duplicates) {}
    std::string duplicate;

    bool null() override { return element(); }
    bool boolean(bool) override { return element(); }
    bool number_integer(number_integer_t) override { return element(); }
    bool number_unsigned(number_unsigned_t) override { return element(); }
    bool number_float(number_float_t, const string_t&) override { return element(); }
    bool string(string_t&) override { return element(); }
    bool binary(binary_t&) override { return element(); }
    bool start_object(std::size_t) override { return open(false); }
    bool key(string_t& k) override {
        if (find_duplicates_ && open_.size() == 1 && duplicate.empty() && !names_.insert(k).second) duplicate = k;
        return true;
    }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override { return open(true); }
    bool end_array() override { return close(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override { throw e; }

private:
    bool open(bool is_list) {
        if (open_.size() >= limits_.max_depth)
            throw ModelError("nested deeper than " + std::to_string(limits_.max_depth) + " levels");
        element();
        open_.push_back({is_list, 0});
        return true;
    }
    bool close() {
        open_.pop_back();
        return true;
    }
    bool element() {
        if (!open_.empty() && open_.back().first && ++open_.back().second > limits_.max_list)
            throw ModelError("a list longer than " + std::to_string(limits_.max_list) + " elements");
        return true;
    }
    const JsonLimits& limits_;
    bool find_duplicates_;
    std::vector<std::pair<bool, std::size_t>> open_;  // (is a list, elements so far) of each open container
    std::set<std::string> names_;
};

}  // namespace

nlohmann::json parse_bounded(const char* begin, const char* end, const JsonLimits& limits, std::string* duplicate_key) {
    BoundedCheck check(limits, duplicate_key != nullptr);
    nlohmann::json::sax_parse(begin, end, &check);
    if (duplicate_key) *duplicate_key = check.duplicate;
    return nlohmann::json::parse(begin, end);
}

// Read, not stat'ed: `--config <(...)` is a pipe.
std::string read_small_file(const std::filesystem::path& p, const char* what, std::uintmax_t limit) {
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec))
        throw ModelError(p.string() + ": is a directory, expected a " + what + " file");
    std::ifstream in(p, std::ios::binary);
    if (!in) throw ModelError(p.string() + ": cannot open " + what + " file");
    std::string text;
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > limit)
            throw ModelError(p.string() + ": " + what + " file is larger than " + std::to_string(limit >> 20) + " MiB");
    }
    if (in.bad()) throw ModelError(p.string() + ": cannot read " + what + " file");
    return text;
}

}  // namespace vit
