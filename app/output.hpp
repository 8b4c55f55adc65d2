// Result writers for the streaming subcommands: text, json, jsonl, csv, tsv, over an OutputSink that checks every
// write. Paths (and every other string) round-trip byte for byte in every format:
//   json/jsonl  a byte that is not part of valid UTF-8 is written as a lone surrogate escape "\udcXX" (PEP 383
//               "surrogateescape", Python's os.fsencode(record["path"]) gives the bytes back); valid UTF-8 as is
//   csv         raw bytes, RFC 4180 quoting
//   tsv         raw bytes, with \\ \t \n \r escaped (backslash escapes, the "linear TSV" convention)
//   text        raw bytes, with \\ \n \r \t and the other control characters (\xHH) escaped
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipeline.hpp"

namespace vit::app {

// Buffered writes to a descriptor; flush() writes everything and throws std::runtime_error
// "NAME: write error: REASON" (No space left on device, Bad file descriptor, File too large, ...).
class OutputSink {
public:
    OutputSink(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
    void write(std::string_view s) { buf_.append(s); }
    void flush();
    bool failed() const { return failed_; }
    const std::string& name() const { return name_; }

private:
    int fd_;
    std::string name_, buf_;
    bool failed_ = false;
};

// What a subcommand adds to a classified input's record (vit explain: method, grid, map, overlay): JSON members
// (json/jsonl; the value already JSON text, strings through json_string) and text lines after the classes
// ("  key: value", the value through text_field). csv/tsv leave them out.
struct RecordExtras {
    std::vector<std::pair<std::string, std::string>> json;
    std::vector<std::pair<std::string, std::string>> text;
};

class ResultWriter {
public:
    virtual ~ResultWriter() = default;
    virtual void begin() {}
    void write(const ClassifyResult& r) { write(r, RecordExtras{}); }  // writes and flushes one record
    virtual void write(const ClassifyResult& r, const RecordExtras& extras) = 0;
    virtual void end() {}
};

// format: text | json | jsonl | csv | tsv. `top_k` fixes the csv/tsv columns; `header`: write the csv/tsv header.
std::unique_ptr<ResultWriter> make_writer(const std::string& format, OutputSink& out, int top_k, bool logits,
                                          bool header = true);

// The escapings above, one field each.
std::string json_string(std::string_view s);  // with the quotes
std::string tsv_field(std::string_view s);
std::string csv_field(std::string_view s);
std::string text_field(std::string_view s);

// The "path" of a json/jsonl record line written by vit (surrogate escapes turned back into bytes); false when
// the line is not a JSON object with a string "path".
bool record_path(const std::string& line, std::string& path);

}  // namespace vit::app
