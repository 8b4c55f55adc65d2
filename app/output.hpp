// Result writers for `vit classify`: text, json, jsonl, csv, tsv. Each record is flushed as soon as written.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "pipeline.hpp"

namespace vit::app {

class ResultWriter {
public:
    virtual ~ResultWriter() = default;
    virtual void begin() {}
    virtual void write(const ClassifyResult& r) = 0;
    virtual void end() {}
};

// format: text | json | jsonl | csv | tsv. `top_k` fixes the csv/tsv columns.
std::unique_ptr<ResultWriter> make_writer(const std::string& format, std::ostream& out, int top_k, bool logits);

}  // namespace vit::app
