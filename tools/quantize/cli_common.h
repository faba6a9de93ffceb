// Shared CLI plumbing: global flags, logging setup, and the subcommand table type.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
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

}  // namespace ptq::cli
