// `quantize run MODEL --input NAME=FILE.npy ... -o OUTDIR [--threads N] [--mode M] [--repeat N [--profile]]`: runs the reference runtime.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <spdlog/spdlog.h>

#include "cli_common.h"
#include "ptq/core/error.h"
#include "ptq/core/npy.h"
#include "ptq/onnx_io/load.h"
#include "ptq/passes/prepare.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::cli {
namespace {

// Per-node wall time from the observer's calls: the time since the previous value was produced
// goes to the node that produced this one (fused Relu/Clip count with their Conv, whose output
// no one observes). A node is named by its first output, as ORT's profile names nodes.
struct NodeProfile {
  struct Row {
    double ms = 0;
    std::string output;
  };
  const ir::Graph* graph = nullptr;
  std::chrono::steady_clock::time_point last;
  std::map<const ir::Node*, Row> nodes;
  void start() { last = std::chrono::steady_clock::now(); }
  void seen(const ir::Graph& g, ir::ValueId v) {
    if (&g != graph) return;
    const auto now = std::chrono::steady_clock::now();
    if (const ir::Node* n = g.producer(v)) {
      Row& r = nodes[n];
      r.ms += std::chrono::duration<double, std::milli>(now - last).count();
      if (r.output.empty()) r.output = g.value(v).name;
    }
    last = now;
  }
  void print(size_t runs) const {
    std::vector<std::pair<double, const ir::Node*>> rows;
    double total = 0;
    for (const auto& [n, r] : nodes) {
      rows.emplace_back(r.ms / static_cast<double>(runs), n);
      total += r.ms / static_cast<double>(runs);
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::map<std::string, double> by_op;
    for (const auto& [t, n] : rows) by_op[n->op_type] += t;
    std::fprintf(stderr, "profile: %.3f ms per run in nodes; by op:", total);
    for (const auto& [op, t] : by_op) std::fprintf(stderr, " %s %.3f", op.c_str(), t);
    std::fprintf(stderr, "\n");
    for (const auto& [t, n] : rows)
      std::fprintf(stderr, "  %8.3f ms  %s -> '%s'\n", t, n->label().c_str(), nodes.at(n).output.c_str());
  }
};

}  // namespace

void add_run(CLI::App& sub, Run& run) {
  struct Options {
    std::string model;
    std::vector<std::string> inputs;
    std::string out_dir;
    size_t threads = 0;
    std::string mode = "fake-quant";
    size_t repeat = 0;
    bool profile = false;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("model", o->model, "ONNX model to run")->required();
  sub.add_option("--input,-i", o->inputs, "Input tensor as NAME=FILE.npy (repeatable)")->required();
  sub.add_option("-o,--output-dir", o->out_dir, "Directory for the outputs (<output name>.npy)")
      ->required();
  sub.add_option("--threads", o->threads, "Kernel threads (default: hardware concurrency)")
      ->check(finite_range(1, kMaxThreads));
  sub.add_option("--mode", o->mode,
                 "QDQ execution: fake-quant (DQ -> fp32 op -> Q, the graph's meaning) or integer "
                 "(the groups ONNX Runtime fuses run as its integer kernels)")
      ->check(CLI::IsMember({"fake-quant", "integer"}));
  sub.add_option("--repeat", o->repeat,
                 "Benchmark: after one warm-up run, time N more runs and print mean/median/min ms "
                 "per run to stderr (load and file I/O excluded)")
      ->check(finite_range(1, 1e6));
  sub.add_flag("--profile", o->profile,
               "With --repeat: per-node mean time of the timed runs (slowest first) and the "
               "sum per op type, to stderr");
  sub.callback([o, &run] {
    run = [o] {
      std::vector<PathArg> read = {{"model", o->model}};
      for (const std::string& spec : o->inputs)
        read.push_back({"--input", spec.substr(spec.find('=') == std::string::npos ? 0 : spec.find('=') + 1)});
      check_output_safety(read, {});
      ir::Model model = onnx_io::load_model(o->model);
      std::map<std::string, Tensor> inputs;
      for (const std::string& spec : o->inputs) {
        const size_t eq = spec.find('=');
        PTQ_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), UsageError,
                  "--input '", spec, "' must be NAME=FILE.npy");
        const std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
        PTQ_CHECK(!inputs.count(name), UsageError, "--input '", name, "' given twice");
        inputs[name] = with_context("--input " + name, [&] { return read_npy(file); });
      }
      // Nodes computing from constants only (a Pad's pads built by Shape/Concat/Slice chains, as
      // PyTorch exports them) run once here, as ONNX Runtime's constant folding does: the same
      // kernels on the same values, so outputs are unchanged, and such a Pad then reaches the
      // runtime's Pad-into-Conv fusion. Not when an initializer is fed as an input (it may vary).
      bool overridden = false;
      for (const auto& [name, t] : inputs) {
        const ir::ValueId v = model.graph.find(name);
        overridden = overridden || (v != ir::kNone && model.graph.value(v).kind == ir::ValueKind::kInitializer);
      }
      if (!overridden) {
        passes::Changes folded;
        passes::fold_constants(model, folded);
      }
      runtime::InterpreterOptions options;
      options.threads = o->threads;
      options.qdq_mode = o->mode == "integer" ? runtime::QdqMode::kIntegerKernel
                                              : runtime::QdqMode::kFakeQuant;
      PTQ_CHECK(!o->profile || o->repeat > 0, UsageError, "--profile needs --repeat N");
      NodeProfile profile;
      profile.graph = &model.graph;
      bool profiling = false;
      if (o->profile) {
        options.observer = [&](const ir::Graph& g, ir::ValueId v, const Tensor&) {
          if (profiling) profile.seen(g, v);
        };
        options.observed = [](const ir::Graph&, ir::ValueId) { return false; };  // fusions as without
      }
      runtime::Interpreter interp(model, options);
      std::vector<Tensor> outputs;
      try {
        outputs = interp.run(inputs);
        if (o->repeat > 0) {
          std::vector<double> ms;
          profiling = o->profile;
          for (size_t i = 0; i < o->repeat; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            profile.start();
            outputs = interp.run(inputs);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
          }
          std::vector<double> sorted = ms;
          std::sort(sorted.begin(), sorted.end());
          double sum = 0;
          for (double v : ms) sum += v;
          const size_t k = sorted.size();
          const double median = k % 2 ? sorted[k / 2] : (sorted[k / 2 - 1] + sorted[k / 2]) / 2;
          std::fprintf(stderr, "repeat %zu threads %zu: mean %.3f ms, median %.3f ms, min %.3f ms\n",
                       k, interp.threads(), sum / static_cast<double>(k), median, sorted[0]);
          if (o->profile) profile.print(k);
        }
      } catch (UsageError& e) {
        // Name the file the offending input came from.
        for (const std::string& spec : o->inputs) {
          const std::string name = spec.substr(0, spec.find('='));
          if (e.message().find("'" + name + "'") != std::string::npos)
            e.add_context(spec.substr(spec.find('=') + 1));
        }
        throw;
      }
      // Every output file is checked before any is written: none may be an input (`-o .` beside
      // the -i files) or a special file, and two outputs may not map to one file name.
      std::vector<PathArg> outs;
      for (const Tensor& t : outputs)
        outs.push_back({"output '" + t.name + "'", (std::filesystem::path(o->out_dir) / file_name_for(t.name)).string()});
      check_output_safety(read, outs);
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
