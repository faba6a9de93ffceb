// ONNX backend node tests (Debian libonnx-testdata): every case whose ops all have kernels must
// match the recorded outputs with ONNX's tolerances (rtol 1e-3, atol 1e-7; exact shape and dtype).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iostream>

#include "ptq/core/error.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/tensor_file.h"
#include "ptq/runtime/interpreter.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;
constexpr const char* kNodeDir = "/usr/share/libonnx-testdata/data/node";

// Files named <prefix><k>.pb in numeric order (input_10 after input_9).
std::vector<std::string> numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> r;
  for (int k = 0; fs::exists(dir / (prefix + std::to_string(k) + ".pb")); ++k)
    r.push_back((dir / (prefix + std::to_string(k) + ".pb")).string());
  return r;
}

// "" when `got` matches `want` as onnx.backend.test.runner checks it, else the difference.
std::string compare(const Tensor& got, const Tensor& want) {
  if (got.dtype() != want.dtype())
    return "dtype " + dtype_name(got.dtype()) + " vs " + dtype_name(want.dtype());
  if (got.dims() != want.dims()) return "shape differs";
  double worst = 0;
  bool bad = false;
  for (size_t i = 0; i < want.numel() && !bad; ++i) {
    double a = 0, b = 0;
    switch (want.dtype()) {
      case DType::kFloat: a = got.data<float>()[i]; b = want.data<float>()[i]; break;
      case DType::kDouble: a = got.data<double>()[i]; b = want.data<double>()[i]; break;
      case DType::kInt64: a = double(got.data<int64_t>()[i]); b = double(want.data<int64_t>()[i]); break;
      case DType::kInt32: a = got.data<int32_t>()[i]; b = want.data<int32_t>()[i]; break;
      case DType::kInt8: a = got.data<int8_t>()[i]; b = want.data<int8_t>()[i]; break;
      case DType::kUint8: a = got.data<uint8_t>()[i]; b = want.data<uint8_t>()[i]; break;
      case DType::kBool: a = got.data<bool>()[i]; b = want.data<bool>()[i]; break;
      default: return got.bit_equal(want) ? "" : "bytes differ (" + dtype_name(want.dtype()) + ")";
    }
    if (std::isnan(a) && std::isnan(b)) continue;
    if (std::isinf(b) && a == b) continue;
    const double err = std::abs(a - b);
    if (!(err <= 1e-7 + 1e-3 * std::abs(b))) bad = true;
    worst = std::max(worst, err);
  }
  return bad ? "values differ (first |diff| " + std::to_string(worst) + ")" : "";
}

enum class Outcome { kPassed, kFailed, kSkipped };

Outcome run_case(const fs::path& dir, std::string& why) {
  ir::Model model;
  std::unique_ptr<runtime::Interpreter> interp;
  try {
    model = onnx_io::load_model((dir / "model.onnx").string());
    interp = std::make_unique<runtime::Interpreter>(model, runtime::InterpreterOptions{1, {}});
  } catch (const Error& e) {
    why = e.what();
    return Outcome::kSkipped;  // a loader limit or an op without a kernel
  }
  const std::vector<ir::ValueId> inputs = model.graph.runtime_inputs();
  for (const fs::path& set : fs::directory_iterator(dir)) {
    if (set.filename().string().rfind("test_data_set_", 0) != 0) continue;
    std::map<std::string, Tensor> feeds;
    std::vector<Tensor> expected;
    try {
      const auto in_files = numbered(set, "input_");
      if (in_files.size() != inputs.size()) {
        why = "input count differs from the graph's runtime inputs";
        return Outcome::kSkipped;
      }
      for (size_t i = 0; i < in_files.size(); ++i)
        feeds[model.graph.value(inputs[i]).name] = onnx_io::read_tensor_file(in_files[i]);
      for (const auto& f : numbered(set, "output_")) expected.push_back(onnx_io::read_tensor_file(f));
    } catch (const Error& e) {
      why = e.what();  // sequence/optional/map data, or dtypes the reader refuses
      return Outcome::kSkipped;
    }
    std::vector<Tensor> got;
    try {
      got = interp->run(feeds);
    } catch (const UnsupportedError& e) {
      why = e.what();  // e.g. a dtype a kernel does not implement
      return Outcome::kSkipped;
    } catch (const UsageError& e) {
      why = e.what();  // the data reader has no such dtype (bfloat16 arrives as uint16)
      return Outcome::kSkipped;
    } catch (const Error& e) {
      why = e.what();
      return Outcome::kFailed;
    }
    if (got.size() != expected.size()) {
      why = "output count differs";
      return Outcome::kFailed;
    }
    for (size_t i = 0; i < got.size(); ++i) {
      const std::string d = compare(got[i], expected[i]);
      if (!d.empty()) {
        why = set.filename().string() + " output " + std::to_string(i) + ": " + d;
        return Outcome::kFailed;
      }
    }
  }
  return Outcome::kPassed;
}

TEST(Conformance, OnnxBackendNodeTests) {
  if (!fs::is_directory(kNodeDir)) GTEST_SKIP() << kNodeDir << " is absent (install libonnx-testdata)";
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(kNodeDir))
    if (e.is_directory() && fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
  std::sort(cases.begin(), cases.end());
  int passed = 0, failed = 0, skipped = 0;
  for (const fs::path& c : cases) {
    std::string why;
    switch (run_case(c, why)) {
      case Outcome::kPassed: ++passed; break;
      case Outcome::kSkipped: ++skipped; break;
      case Outcome::kFailed:
        ++failed;
        ADD_FAILURE() << c.filename().string() << ": " << why;
        break;
    }
  }
  std::cout << "ONNX node tests: ran " << passed + failed << ", passed " << passed << ", failed "
            << failed << ", skipped " << skipped << " (ops without kernels or unsupported data)\n";
  EXPECT_GT(passed, 100);
}

// Kernels added for a known need must not hide among the skipped cases: these must run and pass.
TEST(Conformance, RequiredCasesPass) {
  if (!fs::is_directory(kNodeDir)) GTEST_SKIP() << kNodeDir << " is absent (install libonnx-testdata)";
  for (const char* name : {"test_convtranspose", "test_convtranspose_1d", "test_convtranspose_autopad_same",
                           "test_convtranspose_dilations", "test_convtranspose_kernel_shape",
                           "test_convtranspose_output_shape", "test_convtranspose_pad", "test_convtranspose_pads",
                           "test_convtranspose_with_kernel", "test_constant_pad", "test_edge_pad", "test_reflect_pad",
                           "test_constant_pad_axes", "test_wrap_pad"}) {
    const fs::path dir = fs::path(kNodeDir) / name;
    if (!fs::exists(dir / "model.onnx")) continue;  // older test data without this case
    std::string why;
    EXPECT_EQ(run_case(dir, why), Outcome::kPassed) << name << ": " << why;
  }
}

}  // namespace
}  // namespace ptq
