// Uses the installed ptq: quantizes a model with pipeline::quantize, reloads it, counts Q/DQ nodes.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ptq/core/error.h"
#include "ptq/onnx_io/load.h"
#include "ptq/pipeline/quantize.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: ptq_consumer MODEL.onnx CALIB_DIR OUT.onnx\n");
    return 2;
  }
  // An exception thrown inside libptq.so is caught here by its type.
  try {
    ptq::onnx_io::load_model(std::string(argv[1]) + ".missing");
    std::printf("no error for a missing file\n");
    return 1;
  } catch (const ptq::IoError& e) {
    std::printf("caught ptq::IoError (exit code %d)\n", static_cast<int>(e.code()));
  }
  ptq::pipeline::QuantizeOptions options;
  options.model_path = argv[1];
  options.calib_data = argv[2];
  options.output_path = argv[3];
  options.data.calib_count = 8;
  options.threads = 1;
  const ptq::pipeline::QuantizeResult result = ptq::pipeline::quantize(options);
  const ptq::ir::Model model = ptq::onnx_io::load_model(argv[3]);
  size_t q = 0, dq = 0;
  for (ptq::ir::NodeId id : model.graph.node_ids()) {
    const std::string& op = model.graph.node(id).op_type;
    q += op == "QuantizeLinear";
    dq += op == "DequantizeLinear";
  }
  std::printf("quantized_nodes=%zu QuantizeLinear=%zu DequantizeLinear=%zu\n", result.quantized_nodes, q, dq);
  return result.quantized_nodes > 0 && q > 0 && dq > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
