// Exception types of the vit library: the app maps them to messages and exit codes.
#pragma once

#include <stdexcept>
#include <string>

namespace vit {

// A problem with the model: config, weights or labels. Fatal for a run (exit code 1).
struct ModelError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A problem with one input image: the run records it and goes on (exit code 2).
struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace vit
