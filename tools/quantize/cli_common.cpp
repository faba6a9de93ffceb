// Global flags and logging for the quantize program.
#include "cli_common.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <cmath>

#include "ptq/core/error.h"

namespace ptq::cli {

void add_global_options(CLI::App& app, GlobalOptions& o) {
  app.add_flag("-v,--verbose", o.verbose, "More log output on stderr (-vv for trace)");
  app.add_flag("-q,--quiet", o.quiet, "Only errors on stderr");
  app.add_option("--log-file", o.log_file, "Also write a detailed log to this file");
}

namespace {
bool g_progress = true;
bool g_logging = false;
}  // namespace

bool progress_enabled() { return g_progress; }
bool logging_ready() { return g_logging; }

CLI::Validator finite_range(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) -> std::string {
        double x = 0;
        try {
          size_t used = 0;
          x = std::stod(v, &used);
          if (used != v.size()) return "'" + v + "' is not a number";
        } catch (const std::exception&) {
          return "'" + v + "' is not a number";
        }
        if (!std::isfinite(x) || x < lo || x > hi)
          return str_cat("'", v, "' is not a finite number in [", lo, ", ", hi, "]");
        return std::string();
      },
      str_cat("NUMBER in [", lo, ", ", hi, "]"));
}

void check_log_file(const GlobalOptions& o, int argc, char** argv) {
  if (o.log_file.empty()) return;
  struct stat st {};
  PTQ_CHECK(!(::stat(o.log_file.c_str(), &st) == 0 && S_ISDIR(st.st_mode)), UsageError, "--log-file '",
            o.log_file, "': is a directory, not a file");
  require_regular_output("--log-file", o.log_file);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--log-file") {
      ++i;  // the log file itself
      continue;
    }
    if (a.rfind("--log-file=", 0) == 0) continue;
    for (const std::string& cand : {a, a.substr(a.find('=') == std::string::npos ? a.size() : a.find('=') + 1)}) {
      if (cand.empty() || ::stat(cand.c_str(), &st) != 0) continue;
      PTQ_CHECK(!same_file_or_path(o.log_file, cand), UsageError, "--log-file '", o.log_file,
                "' would overwrite '", cand, "', named on the command line");
    }
  }
}

void setup_logging(const GlobalOptions& o) {
  g_progress = !o.quiet;
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern("%^%l%$: %v");
  console->set_level(o.quiet ? spdlog::level::err
                     : o.verbose >= 2 ? spdlog::level::trace
                     : o.verbose == 1 ? spdlog::level::debug
                                      : spdlog::level::info);
  std::vector<spdlog::sink_ptr> sinks{console};
  if (!o.log_file.empty()) {
    try {
      auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(o.log_file, true);
      file->set_level(spdlog::level::trace);
      file->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
      sinks.push_back(file);
    } catch (const spdlog::spdlog_ex& e) {
      throw IoError(str_cat("--log-file '", o.log_file, "': cannot open for writing"));
    }
  }
  auto logger = std::make_shared<spdlog::logger>("ptq", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  g_logging = true;
}

std::string file_name_for(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (c == '/' || c == '\\' || c == '\0') c = '_';
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s + ".npy";
}

}  // namespace ptq::cli
