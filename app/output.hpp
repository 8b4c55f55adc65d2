// Result writers for `vit classify`: text, json, jsonl, csv, tsv. Each record is flushed as soon as written.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipeline.hpp"

namespace vit::app {

// What a subcommand adds to a classified input's record (vit explain: method, grid, map, overlay): JSON fields
// (json/jsonl) and lines after the classes (text: "  key: value"). csv/tsv leave them out.
struct RecordExtras {
    nlohmann::json fields = nlohmann::json::object();
    std::vector<std::pair<std::string, std::string>> text;
};

class ResultWriter {
public:
    virtual ~ResultWriter() = default;
    virtual void begin() {}
    void write(const ClassifyResult& r) { write(r, RecordExtras{}); }
    virtual void write(const ClassifyResult& r, const RecordExtras& extras) = 0;
    virtual void end() {}
};

// format: text | json | jsonl | csv | tsv. `top_k` fixes the csv/tsv columns.
std::unique_ptr<ResultWriter> make_writer(const std::string& format, std::ostream& out, int top_k, bool logits);

}  // namespace vit::app
