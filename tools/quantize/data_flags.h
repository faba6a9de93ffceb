// Calibration/evaluation data flags (layouts, image preprocessing, counts), shared by commands.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ptq/data/dataset.h"

namespace CLI {
class App;
}

namespace ptq::cli {

struct DataFlags {
  std::vector<std::pair<std::string, std::string>> preprocess;  // (option name, value) as given
  std::vector<std::string> input_shapes;
  size_t count = 0;
  bool skip_nonfinite = false;
};

// Adds --preprocess, --resize-short, --resize, --center-crop, --letterbox, --letterbox-pad,
// --scale, --mean, --std, --channel-order, --layout, --input-shape, --calib-count, --skip-nonfinite.
void add_data_flags(CLI::App& app, DataFlags& flags);
// Parses the collected values; UsageError names the flag.
data::DataOptions to_data_options(const DataFlags& flags);

// Progress on stderr: a live bar on a terminal, a plain line every 10% otherwise.
void print_progress(int pass, int passes, size_t done, size_t total);

}  // namespace ptq::cli
