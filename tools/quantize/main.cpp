// Entry point of `quantize`: parses the command line, runs a subcommand, maps errors to exit codes.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <new>

#include "cli_common.h"
#include "did_you_mean.h"
#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"

namespace {

// One line on stderr, whatever the message contains.
void print_error(const std::string& message) {
  std::string line = message;
  for (char& c : line)
    if (c == '\n' || c == '\r') c = ' ';
  if (ptq::cli::logging_ready()) spdlog::default_logger()->error(line);
  else std::fprintf(stderr, "error: %s\n", line.c_str());
}

constexpr ptq::cli::Subcommand kSubcommands[] = {
    {"inspect", "Print a model's IR version, opsets, inputs/outputs, op histogram and size",
     ptq::cli::add_inspect},
    {"convert", "Load and re-save a model (round trip), optionally with external data",
     ptq::cli::add_convert},
    {"run", "Run a model on .npy inputs with the reference runtime; write outputs as .npy",
     ptq::cli::add_run},
    {"compare", "Accuracy report for two models (e.g. fp32 vs int8) on the same data", ptq::cli::add_compare},
    {"preprocess", "Write the tensors ptq feeds the model from images or other data (.npy per sample)",
     ptq::cli::add_preprocess},
    {"calibrate", "Calibration statistics of one shard of the data (--shard I/N --save-stats PART.json)",
     ptq::cli::add_calibrate},
    {"merge-stats", "Merge every shard's statistics into one calibration table (for --load-calib)",
     ptq::cli::add_merge_stats},
};

}  // namespace

int main(int argc, char** argv) {
  using ptq::ExitCode;
  CLI::App app{"ptq: post-training int8 quantization for ONNX models", "quantize"};
  app.set_version_flag("--version", "quantize (ptq) " PTQ_VERSION);
  app.require_subcommand(0, 1);
  app.fallthrough();
  ptq::cli::GlobalOptions global;
  ptq::cli::add_global_options(app, global);
  ptq::cli::Run run;
  ptq::cli::add_quantize(app, run);
  for (const auto& s : kSubcommands) {
    CLI::App* sub = app.add_subcommand(s.name, s.description);
    s.add(*sub, run);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s%s (see quantize --help)\n", e.what(), ptq::cli::suggest_flag(app, argc, argv).c_str());
    return static_cast<int>(ExitCode::kUsage);
  }
  try {
    ptq::cli::check_log_file(global, argc, argv);
    ptq::cli::setup_logging(global);
    ptq::install_temp_cleanup_on_signals();
    // Every file the command writes is held back as a temp file and renamed here, together, only
    // when it got to the end (0; 4: a failed budget still gets its model and report; 5 returned,
    // not thrown: the report's sanity check failed, and its report says why).
    ptq::OutputSet outputs;
    const int rc = run();
    if (rc == 0 || rc == static_cast<int>(ExitCode::kAccuracyBudget) || rc == static_cast<int>(ExitCode::kDataOrIo))
      outputs.commit();
    return rc;
  } catch (const ptq::Error& e) {
    print_error(e.what());
    return static_cast<int>(e.code());
  } catch (const std::bad_alloc&) {
    print_error("out of memory");
    return static_cast<int>(ExitCode::kDataOrIo);
  } catch (const std::exception& e) {
    print_error(std::string("internal error: ") + e.what());
    return static_cast<int>(ExitCode::kInternal);
  }
}
