// `quantize run MODEL --input NAME=FILE.npy ... -o OUTDIR [--threads N]`: runs the reference runtime.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <spdlog/spdlog.h>

#include "cli_common.h"
#include "ptq/core/error.h"
#include "ptq/core/npy.h"
#include "ptq/onnx_io/load.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::cli {
namespace {

// Output names may hold '/' (and other path syntax); the file name must stay inside OUTDIR.
std::string file_name_for(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (c == '/' || c == '\\' || c == '\0') c = '_';
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s + ".npy";
}

}  // namespace

void add_run(CLI::App& sub, Run& run) {
  struct Options {
    std::string model;
    std::vector<std::string> inputs;
    std::string out_dir;
    size_t threads = 0;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("model", o->model, "ONNX model to run")->required();
  sub.add_option("--input,-i", o->inputs, "Input tensor as NAME=FILE.npy (repeatable)")->required();
  sub.add_option("-o,--output-dir", o->out_dir, "Directory for the outputs (<output name>.npy)")
      ->required();
  sub.add_option("--threads", o->threads, "Kernel threads (default: hardware concurrency)");
  sub.callback([o, &run] {
    run = [o] {
      const ir::Model model = onnx_io::load_model(o->model);
      std::map<std::string, Tensor> inputs;
      for (const std::string& spec : o->inputs) {
        const size_t eq = spec.find('=');
        PTQ_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), UsageError,
                  "--input '", spec, "' must be NAME=FILE.npy");
        const std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
        PTQ_CHECK(!inputs.count(name), UsageError, "--input '", name, "' given twice");
        inputs[name] = with_context("--input " + name, [&] { return read_npy(file); });
      }
      runtime::InterpreterOptions options;
      options.threads = o->threads;
      runtime::Interpreter interp(model, options);
      std::vector<Tensor> outputs;
      try {
        outputs = interp.run(inputs);
      } catch (UsageError& e) {
        // Name the file the offending input came from.
        for (const std::string& spec : o->inputs) {
          const std::string name = spec.substr(0, spec.find('='));
          if (e.message().find("'" + name + "'") != std::string::npos)
            e.add_context(spec.substr(spec.find('=') + 1));
        }
        throw;
      }
      std::error_code ec;
      std::filesystem::create_directories(o->out_dir, ec);
      PTQ_CHECK(!ec, IoError, o->out_dir, ": cannot create directory: ", ec.message());
      for (const Tensor& t : outputs) {
        const std::string path = (std::filesystem::path(o->out_dir) / file_name_for(t.name)).string();
        write_npy(path, t);
        spdlog::info("wrote {} {}", t.name, path);
      }
      return 0;
    };
  });
}

}  // namespace ptq::cli
