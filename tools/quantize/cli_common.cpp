// Global flags and logging for the quantize program.
#include "cli_common.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "ptq/core/error.h"

namespace ptq::cli {

void add_global_options(CLI::App& app, GlobalOptions& o) {
  app.add_flag("-v,--verbose", o.verbose, "More log output on stderr (-vv for trace)");
  app.add_flag("-q,--quiet", o.quiet, "Only errors on stderr");
  app.add_option("--log-file", o.log_file, "Also write a detailed log to this file");
}

namespace {
bool g_progress = true;
}  // namespace

bool progress_enabled() { return g_progress; }

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
}

}  // namespace ptq::cli
