// Deterministic demo-model data for the report tests.
#include "report_fixtures.h"

#include <filesystem>
#include <fstream>

#include <algorithm>

#include "ptq/core/error.h"
#include "ptq/core/npy.h"
#include "ptq/core/tensor.h"
#include "ptq/onnx_io/load.h"
#include "ptq/runtime/interpreter.h"

namespace ptq::test {

void write_demo_samples(const std::string& dir, size_t n, uint32_t seed) {
  std::filesystem::create_directories(dir);
  uint32_t state = seed;
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> v(64);
    for (float& x : v) {
      state = state * 1664525u + 1013904223u;
      x = static_cast<float>(state >> 8) / 16777216.0f;
    }
    char name[32];
    std::snprintf(name, sizeof name, "s%03zu.npy", i);
    write_npy(dir + "/" + name, Tensor::from_vector<float>({1, 1, 8, 8}, v));
  }
}

void write_demo_labels(const std::string& path, const std::string& sample_dir, size_t n) {
  // Labels the fp32 demo model gets right for 3 samples in 4 (the rest get the next class): a
  // classifier well above chance, as the report's sanity check requires of real data.
  const ir::Model model = onnx_io::load_model(PTQ_DEMO_MODEL);
  const runtime::Interpreter fp32(model, runtime::InterpreterOptions{});
  std::string s = "file\tclass_index\n";
  for (size_t i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "s%03zu.npy", i);
    const Tensor logits = fp32.run({{model.graph.value(model.graph.runtime_inputs()[0]).name,
                                     read_npy(sample_dir + "/" + name)}})[0];
    const float* p = logits.data<float>();
    size_t label = static_cast<size_t>(std::max_element(p, p + logits.numel()) - p);
    if (i % 4 == 3) label = (label + 1) % logits.numel();
    s += str_cat(name, "\t", label, "\n");
  }
  write_file(path, s);
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

CliResult quantize_demo(const TempDir& t, const std::vector<std::string>& extra) {
  if (!std::filesystem::exists(t.file("calib"))) {
    write_demo_samples(t.file("calib"), 24, 1);
    write_demo_samples(t.file("eval"), 40, 7);
    write_demo_labels(t.file("labels.tsv"), t.file("eval"), 40);
  }
  std::vector<std::string> args = {PTQ_DEMO_MODEL, "--calib", t.file("calib"), "-o", t.file("int8.onnx")};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_quantize(args);
}

}  // namespace ptq::test
