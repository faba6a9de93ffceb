// Shared CLI plumbing: global flags, logging setup, and the subcommand table type.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ptq/core/file_checks.h"

namespace CLI {
class App;
class Validator;
}

namespace ptq::cli {

struct GlobalOptions {
  int verbose = 0;
  bool quiet = false;
  std::string log_file;
};

void add_global_options(CLI::App& app, GlobalOptions& options);
// Logs go to stderr ("warning: ..."); --log-file gets everything at debug level with times.
void setup_logging(const GlobalOptions& options);
// False under -q: progress bars and plain progress lines stay off.
bool progress_enabled();
// True once setup_logging succeeded (errors before that go straight to stderr).
bool logging_ready();
// --log-file must not be any other existing path named on the command line (an input or output).
void check_log_file(const GlobalOptions& options, int argc, char** argv);

// Flag values: a finite number in [lo, hi] (NaN and Inf are refused, unlike CLI::Range).
CLI::Validator finite_range(double lo, double hi);
// --threads: 1..256 (the default, 0, means all cores); more would exhaust processes or memory.
constexpr int kMaxThreads = 256;

// A tensor name as a .npy file name that stays inside its folder ('/' and NUL become '_').
std::string file_name_for(const std::string& name);

// A subcommand registers its options on `app` and sets `run`, called after a successful parse.
using Run = std::function<int()>;
struct Subcommand {
  const char* name;
  const char* description;
  void (*add)(CLI::App& sub, Run& run);
};

void add_inspect(CLI::App& sub, Run& run);
// The main job's options live on the top-level app itself.
void add_quantize(CLI::App& app, Run& run);
void add_convert(CLI::App& sub, Run& run);
void add_run(CLI::App& sub, Run& run);
void add_compare(CLI::App& sub, Run& run);
void add_calibrate(CLI::App& sub, Run& run);
void add_merge_stats(CLI::App& sub, Run& run);
void add_preprocess(CLI::App& sub, Run& run);

}  // namespace ptq::cli
