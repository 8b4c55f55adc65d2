// Accuracy of a model on a labelled ImageFolder tree (ROOT/<class>/<images>).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline.hpp"

namespace vit {

struct EvalClass {
    std::string folder;  // folder name under ROOT
    int index = 0;       // model class index it maps to
};

struct EvalResult {
    std::vector<EvalClass> classes;  // sorted by folder name
    std::int64_t n = 0;              // images classified
    std::int64_t unreadable = 0;     // inputs that yielded an error record
    std::int64_t top1_correct = 0, top5_correct = 0;
    std::vector<std::int64_t> class_total, class_correct;  // per entry of `classes` (total 0: an empty folder)
    // confusion[i][j]: images of folder i predicted as model class j (num_classes columns).
    std::vector<std::vector<std::int64_t>> confusion;
    std::vector<std::string> errors;    // "path: message" for unreadable files
    std::vector<std::string> warnings;  // folders mapped by position, empty class folders
    double seconds = 0;

    double top1() const { return n ? static_cast<double>(top1_correct) / static_cast<double>(n) : 0; }
    double top5() const { return n ? static_cast<double>(top5_correct) / static_cast<double>(n) : 0; }
    double images_per_s() const { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }
};

struct EvalOptions {
    PipelineOptions pipeline;
    std::int64_t limit = 0;  // 0 = all; otherwise the first `limit` images taken round-robin across classes
};

// Maps class folders to model classes: a folder's index is the index of its name among the labels (a label's
// '/' may appear as '_' in a folder name), otherwise its position among the sorted folder names; `warnings` (if
// given) gets the positional mapping spelled out. Throws InputError when ROOT has no class folders, a position
// exceeds the model's classes, or two folders map to one class (a label's folder and another by position).
std::vector<EvalClass> map_class_folders(const std::filesystem::path& root, const std::vector<std::string>& labels,
                                         int num_classes, std::vector<std::string>* warnings = nullptr);

EvalResult evaluate(VitModel& model, const std::filesystem::path& root, const EvalOptions& opt);

}  // namespace vit
