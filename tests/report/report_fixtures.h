// Report test fixtures: deterministic .npy samples and labels for the demo model, JSON helpers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testutil.h"

namespace ptq::test {

// Writes n samples [1,1,8,8] in [0, 1) as dir/sNNN.npy (a fixed pseudo-random sequence).
void write_demo_samples(const std::string& dir, size_t n, uint32_t seed);
// Writes a labels TSV (with header) for the n samples in sample_dir: the demo model's fp32 class
// for 3 samples in 4, the next class for the others.
void write_demo_labels(const std::string& path, const std::string& sample_dir, size_t n);
nlohmann::json read_json(const std::string& path);
// The last non-empty line of a text.
std::string last_line(const std::string& text);
// Runs quantize on the demo model with calibration and evaluation data plus extra flags.
CliResult quantize_demo(const TempDir& t, const std::vector<std::string>& extra);

}  // namespace ptq::test
