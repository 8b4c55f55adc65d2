// Result writers. csv/tsv columns: path, error, then label_i, index_i, prob_i for i = 1..k (and logits as one
// space-separated column when requested).
#include "output.hpp"

#include <cstdio>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

namespace vit::app {

namespace {

using nlohmann::json;

std::string fmt_prob(float p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", p);
    return buf;
}

json to_json_record(const ClassifyResult& r, bool logits, const RecordExtras& extras) {
    json j;
    j["path"] = r.path;
    if (!r.ok()) {
        j["error"] = r.error;
        return j;
    }
    json tk = json::array();
    for (const auto& p : r.top_k) tk.push_back({{"index", p.index}, {"label", p.label}, {"prob", p.prob}});
    j["top_k"] = std::move(tk);
    if (logits) j["logits"] = r.logits;
    for (const auto& [k, v] : extras.fields.items()) j[k] = v;
    return j;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

class JsonlWriter : public ResultWriter {
public:
    JsonlWriter(std::ostream& out, bool logits) : out_(out), logits_(logits) {}
    using ResultWriter::write;
    void write(const ClassifyResult& r, const RecordExtras& x) override {
        out_ << dump(to_json_record(r, logits_, x)) << '\n' << std::flush;
    }

private:
    std::ostream& out_;
    bool logits_;
};

// A JSON array streamed element by element, so a long run still shows progress downstream.
class JsonWriter : public ResultWriter {
public:
    JsonWriter(std::ostream& out, bool logits) : out_(out), logits_(logits) {}
    void begin() override { out_ << "[" << std::flush; }
    using ResultWriter::write;
    void write(const ClassifyResult& r, const RecordExtras& x) override {
        out_ << (first_ ? "\n  " : ",\n  ") << dump(to_json_record(r, logits_, x)) << std::flush;
        first_ = false;
    }
    void end() override { out_ << (first_ ? "]\n" : "\n]\n") << std::flush; }

private:
    std::ostream& out_;
    bool logits_;
    bool first_ = true;
};

class TextWriter : public ResultWriter {
public:
    explicit TextWriter(std::ostream& out) : out_(out) {}
    using ResultWriter::write;
    void write(const ClassifyResult& r, const RecordExtras& x) override {
        if (!r.ok()) {
            out_ << r.path << ": error: " << r.error << '\n' << std::flush;
            return;
        }
        out_ << r.path << '\n';
        for (const auto& p : r.top_k) out_ << "  " << fmt_prob(p.prob) << "  " << p.label << " (" << p.index << ")\n";
        for (const auto& [k, v] : x.text) out_ << "  " << k << ": " << v << '\n';
        out_ << std::flush;
    }

private:
    std::ostream& out_;
};

// RFC 4180 quoting for csv; tsv replaces tabs and newlines inside fields with spaces.
class DelimitedWriter : public ResultWriter {
public:
    DelimitedWriter(std::ostream& out, char sep, int k, bool logits) : out_(out), sep_(sep), k_(k), logits_(logits) {}
    void begin() override {
        std::vector<std::string> h = {"path", "error"};
        for (int i = 1; i <= k_; ++i) {
            h.push_back("label_" + std::to_string(i));
            h.push_back("index_" + std::to_string(i));
            h.push_back("prob_" + std::to_string(i));
        }
        if (logits_) h.push_back("logits");
        row(h);
    }
    using ResultWriter::write;
    void write(const ClassifyResult& r, const RecordExtras&) override {
        std::vector<std::string> f = {r.path, r.error};
        for (int i = 0; i < k_; ++i) {
            if (i < static_cast<int>(r.top_k.size())) {
                f.push_back(r.top_k[i].label);
                f.push_back(std::to_string(r.top_k[i].index));
                f.push_back(fmt_prob(r.top_k[i].prob));
            } else {
                f.insert(f.end(), {"", "", ""});
            }
        }
        if (logits_) {
            std::ostringstream s;
            s << std::setprecision(9);
            for (std::size_t i = 0; i < r.logits.size(); ++i) s << (i ? " " : "") << r.logits[i];
            f.push_back(s.str());
        }
        row(f);
    }

private:
    void row(const std::vector<std::string>& fields) {
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (i) out_ << sep_;
            out_ << escape(fields[i]);
        }
        out_ << '\n' << std::flush;
    }
    std::string escape(const std::string& s) const {
        if (sep_ == '\t') {
            std::string o = s;
            for (char& c : o)
                if (c == '\t' || c == '\n' || c == '\r') c = ' ';
            return o;
        }
        if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
        std::string o = "\"";
        for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
        return o + "\"";
    }

    std::ostream& out_;
    char sep_;
    int k_;
    bool logits_;
};

}  // namespace

std::unique_ptr<ResultWriter> make_writer(const std::string& format, std::ostream& out, int top_k, bool logits) {
    if (format == "jsonl") return std::make_unique<JsonlWriter>(out, logits);
    if (format == "json") return std::make_unique<JsonWriter>(out, logits);
    if (format == "csv") return std::make_unique<DelimitedWriter>(out, ',', top_k, logits);
    if (format == "tsv") return std::make_unique<DelimitedWriter>(out, '\t', top_k, logits);
    return std::make_unique<TextWriter>(out);
}

}  // namespace vit::app
