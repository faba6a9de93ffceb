// `quantize convert MODEL -o OUT`: load and re-save a model (round trip, external data in or out).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "cli_common.h"
#include "ptq/ir/verify.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/save.h"
#include "ptq/pipeline/quantize.h"

namespace ptq::cli {

void add_convert(CLI::App& sub, Run& run) {
  struct Options {
    std::string model;
    std::string output;
    bool external_data = false;
    bool prepare = false;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("model", o->model, "Input ONNX model")->required();
  sub.add_option("-o,--output", o->output, "Output ONNX model")->required();
  sub.add_flag("--external-data", o->external_data,
               "Store tensors of 1 KiB or more in OUTPUT.data beside the model");
  sub.add_flag("--prepare", o->prepare,
               "Write the graph ptq calibrates: opset >= 13, no-ops removed, BatchNormalization folded");
  sub.callback([o, &run] {
    run = [o] {
      std::vector<PathArg> outputs = {{"-o", o->output}};
      if (o->external_data) outputs.push_back({"-o (external data)", o->output + ".data"});
      check_output_safety({{"model", o->model}}, outputs);
      ir::Model m = o->prepare ? pipeline::load_prepared(o->model) : onnx_io::load_model(o->model);
      ir::verify(m);
      onnx_io::SaveOptions opts;
      if (o->external_data) opts.external_data = onnx_io::ExternalData::kAlways;
      onnx_io::save_model(m, o->output, opts);
      spdlog::info("wrote {}", o->output);
      return 0;
    };
  });
}

}  // namespace ptq::cli
