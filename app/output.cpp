// Result writers and the escapings that make every output format carry paths byte for byte (see output.hpp).
// csv/tsv columns: path, error, then label_i, index_i, prob_i for i = 1..k, warning (and logits as one
// space-separated column when requested).
#include "output.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace vit::app {

void OutputSink::flush() {
    std::size_t done = 0;
    while (done < buf_.size()) {
        const ssize_t w = ::write(fd_, buf_.data() + done, buf_.size() - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {  // a non-blocking descriptor inherited from the caller: wait until writable
                pollfd p{fd_, POLLOUT, 0};
                ::poll(&p, 1, 1000);
                continue;
            }
            const int err = errno;
            failed_ = true;
            buf_.clear();
            throw std::runtime_error(name_ + ": write error: " + std::strerror(err));
        }
        done += static_cast<std::size_t>(w);
    }
    buf_.clear();
}

namespace {

// Length of the valid UTF-8 sequence at s[i] (1-4), 0 if the byte there does not start one. Strict, as Python's
// decoder: no overlong forms, no surrogates, nothing above U+10FFFF.
std::size_t utf8_length(std::string_view s, std::size_t i) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    const std::size_t left = s.size() - i;
    auto cont = [&](std::size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return left >= 2 && cont(i + 1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
        if (c == 0xE0 && b(i + 1) < 0xA0) return 0;  // overlong
        if (c == 0xED && b(i + 1) > 0x9F) return 0;  // a surrogate
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
        if (c == 0xF0 && b(i + 1) < 0x90) return 0;  // overlong
        if (c == 0xF4 && b(i + 1) > 0x8F) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

std::string hex2(unsigned char c) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", c);
    return buf;
}

std::string fmt_prob(float p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", p);
    return buf;
}

std::string json_number(double v) { return nlohmann::json(v).dump(); }  // NaN -> null

std::string json_record(const ClassifyResult& r, bool logits, const RecordExtras& extras) {
    std::string o = "{\"path\":" + json_string(r.path);
    if (!r.ok()) return o + ",\"error\":" + json_string(r.error) + "}";
    o += ",\"top_k\":[";
    for (std::size_t i = 0; i < r.top_k.size(); ++i) {
        const auto& p = r.top_k[i];
        o += (i ? ",{\"index\":" : "{\"index\":") + std::to_string(p.index) + ",\"label\":" + json_string(p.label) +
             ",\"prob\":" + json_number(p.prob) + "}";
    }
    o += "]";
    if (!r.warning.empty()) o += ",\"warning\":" + json_string(r.warning);
    if (logits) o += ",\"logits\":" + nlohmann::json(r.logits).dump();
    for (const auto& [key, value] : extras.json) o += "," + json_string(key) + ":" + value;
    return o + "}";
}

class JsonlWriter : public ResultWriter {
public:
    JsonlWriter(OutputSink& out, bool logits) : out_(out), logits_(logits) {}
    using ResultWriter::write;
    void write(const ClassifyResult& r, const RecordExtras& x) override {
        out_.write(json_record(r, logits_, x));
        out_.write("\n");
        out_.flush();
    }

private:
    OutputSink& out_;
    bool logits_;
};

// A JSON array streamed element by element, so a long run still shows progress downstream.
class JsonWriter : public ResultWriter {
public:
    JsonWriter(OutputSink& out, bool logits) : out_(out), logits_(logits) {}
    void begin() override {
        out_.write("[");
        out_.flush();
    }
    using ResultWriter::write;
    void write(const ClassifyResult& r, const RecordExtras& x) override {
        out_.write(first_ ? "\n  " : ",\n  ");
        out_.write(json_record(r, logits_, x));
        out_.flush();
        first_ = false;
    }
    void end() override {
        out_.write(first_ ? "]\n" : "\n]\n");
        out_.flush();
    }

private:
    OutputSink& out_;
    bool logits_;
    bool first_ = true;
};

class TextWriter : public ResultWriter {
public:
    explicit TextWriter(OutputSink& out) : out_(out) {}
    using ResultWriter::write;
    void write(const ClassifyResult& r, const RecordExtras& x) override {
        if (!r.ok()) {
            out_.write(text_field(r.path) + ": error: " + text_field(r.error) + "\n");
        } else {
            out_.write(text_field(r.path) + "\n");
            for (const auto& p : r.top_k)
                out_.write("  " + fmt_prob(p.prob) + "  " + text_field(p.label) + " (" + std::to_string(p.index) +
                           ")\n");
            if (!r.warning.empty()) out_.write("  warning: " + text_field(r.warning) + "\n");
            for (const auto& [key, value] : x.text) out_.write("  " + key + ": " + text_field(value) + "\n");
        }
        out_.flush();
    }

private:
    OutputSink& out_;
};

class DelimitedWriter : public ResultWriter {
public:
    DelimitedWriter(OutputSink& out, char sep, int k, bool logits, bool header)
        : out_(out), sep_(sep), k_(k), logits_(logits), header_(header) {}
    void begin() override {
        if (!header_) return;
        std::vector<std::string> h = {"path", "error"};
        for (int i = 1; i <= k_; ++i) {
            h.push_back("label_" + std::to_string(i));
            h.push_back("index_" + std::to_string(i));
            h.push_back("prob_" + std::to_string(i));
        }
        h.push_back("warning");
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
        f.push_back(r.warning);
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
        std::string line;
        for (std::size_t i = 0; i < fields.size(); ++i) {
            if (i) line += sep_;
            line += sep_ == '\t' ? tsv_field(fields[i]) : csv_field(fields[i]);
        }
        out_.write(line + "\n");
        out_.flush();
    }

    OutputSink& out_;
    char sep_;
    int k_;
    bool logits_, header_;
};

}  // namespace

std::string json_string(std::string_view s) {
    std::string o = "\"";
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const std::size_t n = utf8_length(s, i);
        if (n == 0) {  // not UTF-8: PEP 383 surrogate escape of the byte
            o += "\\udc" + hex2(c);
            ++i;
            continue;
        }
        if (n > 1) {
            o.append(s.substr(i, n));
        } else if (c == '"') {
            o += "\\\"";
        } else if (c == '\\') {
            o += "\\\\";
        } else if (c == '\n') {
            o += "\\n";
        } else if (c == '\r') {
            o += "\\r";
        } else if (c == '\t') {
            o += "\\t";
        } else if (c == '\b') {
            o += "\\b";
        } else if (c == '\f') {
            o += "\\f";
        } else if (c < 0x20) {
            o += "\\u00" + hex2(c);
        } else {
            o += static_cast<char>(c);
        }
        i += n;
    }
    return o + "\"";
}

std::string tsv_field(std::string_view s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '\\': o += "\\\\"; break;
            case '\t': o += "\\t"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            default: o += c;
        }
    }
    return o;
}

std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
}

std::string text_field(std::string_view s) {
    std::string o;
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\\') o += "\\\\";
        else if (c == '\n') o += "\\n";
        else if (c == '\r') o += "\\r";
        else if (c == '\t') o += "\\t";
        else if (c < 0x20 || c == 0x7f) o += "\\x" + hex2(c);
        else o += ch;
    }
    return o;
}

bool record_path(const std::string& line, std::string& path) {
    // nlohmann::json rejects lone surrogates: each "\udcXX" that is not the second half of a pair becomes
    // "\u0000\u00XX" (a NUL cannot be in a path), turned back into the byte XX after parsing.
    std::string t;
    t.reserve(line.size());
    bool in_string = false, after_high = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (!in_string) {
            if (c == '"') in_string = true;
            t += c;
            continue;
        }
        if (c == '"') {
            in_string = false;
            after_high = false;
            t += c;
            continue;
        }
        if (c != '\\' || i + 1 >= line.size()) {
            after_high = false;
            t += c;
            continue;
        }
        if (line[i + 1] == 'u' && i + 5 < line.size()) {
            const std::string hex = line.substr(i + 2, 4);
            unsigned v = 0;
            bool ok = true;
            for (char h : hex) ok = ok && std::isxdigit(static_cast<unsigned char>(h));
            if (ok) v = static_cast<unsigned>(std::stoul(hex, nullptr, 16));
            if (ok && v >= 0xDC80 && v <= 0xDCFF && !after_high) {
                t += "\\u0000\\u00" + line.substr(i + 4, 2);
                i += 5;
                after_high = false;
                continue;
            }
            after_high = ok && v >= 0xD800 && v <= 0xDBFF;
            t.append(line, i, 6);
            i += 5;
            continue;
        }
        after_high = false;
        t.append(line, i, 2);
        ++i;
    }
    const auto j = nlohmann::json::parse(t, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("path") || !j["path"].is_string()) return false;
    const std::string p = j["path"].get<std::string>();
    path.clear();
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (p[i] == '\0' && i + 2 < p.size() + 0 && (p[i + 1] == '\xc2' || p[i + 1] == '\xc3')) {
            path += static_cast<char>(static_cast<unsigned char>(p[i + 2]) + (p[i + 1] == '\xc3' ? 0x40 : 0));
            i += 2;
        } else {
            path += p[i];
        }
    }
    return true;
}

std::unique_ptr<ResultWriter> make_writer(const std::string& format, OutputSink& out, int top_k, bool logits,
                                          bool header) {
    if (format == "jsonl") return std::make_unique<JsonlWriter>(out, logits);
    if (format == "json") return std::make_unique<JsonWriter>(out, logits);
    if (format == "csv") return std::make_unique<DelimitedWriter>(out, ',', top_k, logits, header);
    if (format == "tsv") return std::make_unique<DelimitedWriter>(out, '\t', top_k, logits, header);
    return std::make_unique<TextWriter>(out);
}

}  // namespace vit::app
