// The Hub from the command line: a pull with a progress bar on stderr and Ctrl-C handling, and ORG/NAME[@REV]
// model arguments resolved to a cached snapshot (downloaded on first use unless offline).
#pragma once

#include <filesystem>
#include <string>

#include "hub.hpp"

namespace vit::app {

// Pulls repo_id at revision. The bar shows when stderr is a terminal; retries and waits are reported on stderr.
// Ctrl-C stops the transfer and leaves the .incomplete file for the next pull (HubError::Interrupted, whose
// message says so). Returns the snapshot.
hub::Snapshot pull_with_progress(const hub::Settings& s, const std::string& repo_id, const std::string& revision);

// "ORG/NAME" or "ORG/NAME@REV": the parts, or false when `arg` is not a Hub model id.
bool parse_hub_arg(const std::string& arg, std::string& repo_id, std::string& revision);

// The snapshot folder of a Hub model: the cached one when it is complete (no network), else a pull.
std::filesystem::path hub_model_dir(const std::string& repo_id, const std::string& revision);

}  // namespace vit::app
