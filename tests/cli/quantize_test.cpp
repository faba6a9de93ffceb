// `quantize MODEL --calib ...` end to end: determinism, bad calibration input, every method.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <regex>

#include "ptq/core/npy.h"
#include "ptq/onnx_io/load.h"
#include "ptq/onnx_io/save.h"
#include "ptq/report/evaluate.h"
#include "testutil.h"

namespace ptq {
namespace {

namespace fs = std::filesystem;

std::string demo_model() { return std::string(PTQ_SOURCE_DIR) + "/models/demo/model.onnx"; }

// n random 8x8 "digits", written as `files` .npy files of n/files samples each (batch stacked).
std::string write_digits(const test::TempDir& tmp, const std::string& name, int n, int files,
                         float poison = 0.f) {
  const fs::path dir = tmp.path() / name;
  fs::create_directories(dir);
  std::mt19937 rng(2345);
  std::uniform_real_distribution<float> d(0.f, 16.f);
  std::vector<float> all(static_cast<size_t>(n) * 64);
  for (float& v : all) v = d(rng);
  if (poison != 0.f) all[100] = poison;
  const int per = n / files;
  for (int f = 0; f < files; ++f) {
    std::vector<float> part(all.begin() + f * per * 64, all.begin() + (f + 1) * per * 64);
    char file[32];
    std::snprintf(file, sizeof(file), "%04d.npy", f);
    write_npy((dir / file).string(), Tensor::from_vector<float>({per, 1, 8, 8}, part));
  }
  return dir.string();
}

struct Output {
  test::CliResult cli;
  std::string model;
  std::string table;
};

Output quantize(const test::TempDir& tmp, const std::string& tag, std::vector<std::string> args) {
  const std::string out = tmp.file(tag + ".onnx"), table = tmp.file(tag + ".json");
  std::vector<std::string> full = {demo_model(), "-o", out, "--save-calib", table, "-q"};
  full.insert(full.end(), args.begin(), args.end());
  Output o;
  o.cli = test::run_quantize(full);
  if (fs::exists(out)) o.model = test::read_file(out);
  if (fs::exists(table)) o.table = test::read_file(table);
  return o;
}

}  // namespace

TEST(Quantize, ByteIdenticalAcrossThreadsAndBatchSizes) {
  test::TempDir tmp;
  const std::string single = write_digits(tmp, "single", 16, 16);
  const std::string batched = write_digits(tmp, "batched", 16, 4);
  for (const char* method : {"minmax", "percentile", "entropy", "mse", "auto"}) {
    SCOPED_TRACE(method);
    const Output a = quantize(tmp, "a", {"--calib", single, "--method", method, "--threads", "1"});
    ASSERT_EQ(a.cli.exit_code, 0) << a.cli.err;
    const Output b = quantize(tmp, "b", {"--calib", single, "--method", method, "--threads", "2"});
    const Output c = quantize(tmp, "c", {"--calib", batched, "--method", method, "--threads", "2"});
    const Output again = quantize(tmp, "d", {"--calib", single, "--method", method, "--threads", "1"});
    EXPECT_FALSE(a.model.empty());
    // (EXPECT_TRUE, not EXPECT_EQ: a failure must not print two model files as text.)
    EXPECT_TRUE(a.model == b.model) << "threads changed the model";
    EXPECT_EQ(a.table, b.table) << "threads changed the calibration table";
    EXPECT_TRUE(a.model == c.model) << "batch size changed the model";
    EXPECT_EQ(a.table, c.table) << "batch size changed the calibration table";
    EXPECT_TRUE(a.model == again.model) << "a repeated run changed the model";
  }
}

// --method auto measures every method's int8 model on the search rows and keeps the best: the
// table records the method chosen, and that method named gives the very same model. Shards (which
// cannot measure on all the data) are refused with a clear error.
TEST(Quantize, AutoMethodChoosesAMethodAndRecordsIt) {
  test::TempDir tmp;
  const std::string data = write_digits(tmp, "d", 16, 16);
  const Output a = quantize(tmp, "a", {"--calib", data, "--method", "auto"});
  ASSERT_EQ(a.cli.exit_code, 0) << a.cli.err;
  const size_t key = a.table.find("\"method\": \"");
  ASSERT_NE(key, std::string::npos) << a.table;
  const std::string chosen = a.table.substr(key + 11, a.table.find('"', key + 11) - key - 11);
  EXPECT_TRUE(chosen == "minmax" || chosen == "percentile" || chosen == "entropy") << chosen;
  // Without -q the choice is said with every candidate's figure.
  const test::CliResult said =
      test::run_quantize({demo_model(), "--calib", data, "--method", "auto", "-o", tmp.file("said.onnx")});
  ASSERT_EQ(said.exit_code, 0) << said.err;
  EXPECT_NE(said.err.find("--method auto: " + chosen + " ("), std::string::npos) << said.err;
  for (const char* m : {"minmax", "percentile", "entropy"})
    EXPECT_NE(said.err.find(std::string(m) + " "), std::string::npos) << "no figure for " << m << ": " << said.err;
  EXPECT_NE(said.out.find("method auto: " + chosen), std::string::npos) << said.out;
  const Output b = quantize(tmp, "b", {"--calib", data, "--method", chosen});
  ASSERT_EQ(b.cli.exit_code, 0) << b.cli.err;
  EXPECT_TRUE(a.model == b.model) << "--method auto and --method " << chosen << " differ";
  const test::CliResult shard = test::run_quantize({"calibrate", demo_model(), "--calib", data, "--method", "auto",
                                                    "--shard", "1/2", "--save-stats", tmp.file("s.json")});
  EXPECT_EQ(shard.exit_code, 1) << shard.err;  // usage
  EXPECT_NE(shard.err.find("--method auto"), std::string::npos) << shard.err;
}

TEST(Quantize, LoadCalibReproducesTheModelAndChecksTheHash) {
  test::TempDir tmp;
  const std::string data = write_digits(tmp, "d", 8, 8);
  const Output a = quantize(tmp, "a", {"--calib", data, "--method", "percentile"});
  ASSERT_EQ(a.cli.exit_code, 0) << a.cli.err;
  const Output b = quantize(tmp, "b", {"--load-calib", tmp.file("a.json")});
  ASSERT_EQ(b.cli.exit_code, 0) << b.cli.err;
  EXPECT_TRUE(a.model == b.model);
  const auto own = test::run_quantize({demo_model(), "-o", tmp.file("own.onnx"), "--load-calib", tmp.file("a.json")});
  ASSERT_EQ(own.exit_code, 0) << own.err;
  EXPECT_EQ(own.err.find("not in the prepared graph"), std::string::npos) << own.err;
  // A tensor the prepared graph lacks (an older ptq's preparation): said, the model still written.
  std::string stale = test::read_file(tmp.file("a.json"));
  stale.replace(stale.find("\"tensors\": {") + 13, 0, "\n    \"gone_after_fold\": {\"max\": 1.0, \"min\": 0.0},");
  test::write_file(tmp.file("stale.json"), stale);
  const auto e = test::run_quantize({demo_model(), "-o", tmp.file("e.onnx"), "--load-calib", tmp.file("stale.json")});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.err.find("warning: --load-calib: 1 of the"), std::string::npos) << e.err;
  EXPECT_NE(e.err.find("'gone_after_fold'"), std::string::npos) << e.err;
  EXPECT_TRUE(fs::exists(tmp.file("e.onnx")));
  // A table for another model file: refused unless --force.
  std::string other = test::read_file(tmp.file("a.json"));
  other.replace(other.find("\"model_sha256\": \"") + 17, 4, "0000");
  test::write_file(tmp.file("other.json"), other);
  const Output c = quantize(tmp, "c", {"--load-calib", tmp.file("other.json")});
  EXPECT_EQ(c.cli.exit_code, 5) << c.cli.err;
  EXPECT_NE(c.cli.err.find("another model"), std::string::npos) << c.cli.err;
  EXPECT_TRUE(c.model.empty());
  const Output d = quantize(tmp, "d", {"--load-calib", tmp.file("other.json"), "--force"});
  EXPECT_EQ(d.cli.exit_code, 0) << d.cli.err;
  // A table whose run kept uint8 weights (--uint8-weights auto) rebuilds them, and records them
  // again; with --uint8-weights off it does not.
  std::string kept = test::read_file(tmp.file("a.json"));
  if (kept.find("\"uint8_weights\"") == std::string::npos)  // (a's own run may have kept them)
    kept.replace(kept.rfind('}'), 1, ",\n  \"uint8_weights\": {\"kept\": true}\n}");
  test::write_file(tmp.file("kept.json"), kept);
  const Output u = quantize(tmp, "u", {"--load-calib", tmp.file("kept.json")});
  const Output v = quantize(tmp, "v", {"--load-calib", tmp.file("kept.json"), "--uint8-weights", "off"});
  ASSERT_EQ(u.cli.exit_code, 0) << u.cli.err;
  ASSERT_EQ(v.cli.exit_code, 0) << v.cli.err;
  EXPECT_NE(u.table.find("\"uint8_weights\""), std::string::npos);
  EXPECT_EQ(v.table.find("\"uint8_weights\""), std::string::npos);
  EXPECT_FALSE(u.model == v.model) << "the stem reads the input data: uint8 at 8 bits instead of int8 at 7";
}

// --uint8-weights: a bad value is a usage error naming it (exit 1, nothing written); with
// --reduce-range there are no pair-safe weights to replace, which is said; `on` changes the demo
// model (its first Conv reads the input data: uint8 at 8 bits instead of int8 at 7).
TEST(Quantize, Uint8WeightsFlagIsCheckedAndSaysWhenItDoesNothing) {
  test::TempDir tmp;
  const std::string data = write_digits(tmp, "d", 8, 8);
  const auto bad = test::run_quantize({demo_model(), "--calib", data, "-o", tmp.file("bad.onnx"), "--uint8-weights", "maybe"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--uint8-weights: unknown value 'maybe' (use off, auto or on)"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(tmp.file("bad.onnx")));
  const auto moot = test::run_quantize({demo_model(), "--calib", data, "-o", tmp.file("moot.onnx"), "--uint8-weights", "on",
                                        "--reduce-range", "--effort", "fast"});
  EXPECT_EQ(moot.exit_code, 0) << moot.err;
  EXPECT_NE(moot.err.find("--uint8-weights has no effect with --reduce-range"), std::string::npos) << moot.err;
  const Output on = quantize(tmp, "on", {"--calib", data, "--effort", "fast", "--uint8-weights", "on"});
  const Output off = quantize(tmp, "off", {"--calib", data, "--effort", "fast", "--uint8-weights", "off"});
  ASSERT_EQ(on.cli.exit_code, 0) << on.cli.err;
  ASSERT_EQ(off.cli.exit_code, 0) << off.cli.err;
  EXPECT_FALSE(on.model == off.model);
}

TEST(Quantize, BadCalibrationInputFailsCleanly) {
  test::TempDir tmp;
  const std::string good = write_digits(tmp, "good", 4, 4);
  const std::string nan = write_digits(tmp, "nan", 4, 4, std::nanf(""));
  fs::create_directories(tmp.path() / "empty");
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{"--calib", nan}, 5, "0001.npy: input 'input' contains NaN"},
      {{"--calib", tmp.file("empty")}, 5, "empty"},
      {{"--calib", tmp.file("missing")}, 5, "missing"},
      {{"--calib", good, "--method", "nope"}, 1, "unknown method 'nope'"},
      {{"--calib", good, "--target", "gpu"}, 1, "--target"},
      {{"--calib", good, "--activation-type", "int8"}, 1, "--target generic"},
      {{"--calib", good, "--exclude-nodes", "("}, 1, "--exclude-nodes"},
      {{}, 1, "--calib"},
      {{"--load-calib", tmp.file("x.json")}, 5, "x.json"},
      {{"--calib", good, "--mode", "bogus"}, 1, "--mode: 'bogus' is not static, dynamic or weight-only"},
      {{"--mode", "dynamic"}, 1, "--mode dynamic has no calibration table"},  // the helper adds --save-calib
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    const Output o = quantize(tmp, "out", c.args);
    EXPECT_EQ(o.cli.exit_code, c.exit_code) << o.cli.err;
    EXPECT_NE(o.cli.err.find(c.message), std::string::npos) << o.cli.err;
    EXPECT_EQ(std::count(o.cli.err.begin(), o.cli.err.end(), '\n'), 1) << o.cli.err;
    EXPECT_TRUE(o.model.empty()) << "no output model may be left";
  }
  // With --skip-nonfinite the NaN sample is dropped with a warning and the rest calibrates.
  const auto s = test::run_quantize({demo_model(), "-o", tmp.file("skip.onnx"), "--calib", nan, "--skip-nonfinite"});
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.err.find("warning: skipped 1 calibration samples with NaN/Inf"), std::string::npos) << s.err;
}

TEST(Quantize, DynamicModeNeedsNoDataAndReportsWithEval) {
  test::TempDir tmp;
  const std::string eval = write_digits(tmp, "eval", 4, 4);
  const std::string out = tmp.file("dyn.onnx"), report = tmp.file("dyn.json");
  const auto r = test::run_quantize({demo_model(), "--mode", "dynamic", "-o", out, "--eval", eval, "--report", report});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("quantized 3 nodes dynamically (3 DynamicQuantizeLinear, 3 weights)"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("calibrating"), std::string::npos) << r.err;
  const std::string model = test::read_file(out);
  EXPECT_NE(model.find("ConvInteger"), std::string::npos);
  EXPECT_NE(model.find("MatMulInteger"), std::string::npos);
  EXPECT_NE(model.find("DynamicQuantizeLinear"), std::string::npos);
  EXPECT_NE(test::read_file(report).find("\"cosine\""), std::string::npos);
}

TEST(Quantize, WeightOnlyModeNeedsNoDataReportsAndIsDeterministic) {
  test::TempDir tmp;
  const std::string eval = write_digits(tmp, "eval", 4, 4);
  const std::string out = tmp.file("wo.onnx"), report = tmp.file("wo.json");
  const auto r = test::run_quantize({demo_model(), "--mode", "weight-only", "-o", out, "--eval", eval, "--report", report});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The Gemm becomes MatMulNBits (run by the reference runtime for the report); Conv stays fp32, said.
  EXPECT_NE(r.out.find("quantized 1 nodes weight-only (4 bits, block 16; 1 weights)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("weight-only mode has no blockwise Conv kernel"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("calibrating"), std::string::npos) << r.err;
  const std::string model = test::read_file(out);
  EXPECT_NE(model.find("MatMulNBits"), std::string::npos);
  EXPECT_NE(model.find("com.microsoft"), std::string::npos);
  EXPECT_EQ(model.find("\"Gemm\""), std::string::npos);
  EXPECT_NE(test::read_file(report).find("\"cosine\""), std::string::npos);
  // Same bytes on a second run, and 8 bits with an explicit block size.
  const auto again = test::run_quantize({demo_model(), "--mode", "weight-only", "-o", tmp.file("wo2.onnx")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(test::read_file(tmp.file("wo2.onnx")), model);
  const auto b8 = test::run_quantize(
      {demo_model(), "--mode", "weight-only", "--bits", "8", "--block-size", "64", "-o", tmp.file("wo8.onnx")});
  ASSERT_EQ(b8.exit_code, 0) << b8.err;
  EXPECT_NE(b8.out.find("(8 bits, block 64; 1 weights)"), std::string::npos) << b8.out;
}

TEST(Quantize, WeightOnlyFlagsAreCheckedAndWarnedAbout) {
  test::TempDir tmp;
  const struct {
    std::vector<std::string> args;
    const char* message;
  } bad[] = {{{"--bits", "3"}, "--bits: 3 is not 4 or 8"},
             {{"--bits", "16"}, "--bits: 16 is not 4 or 8"},
             {{"--block-size", "24"}, "--block-size: 24 is not a power of two"},
             {{"--block-size", "8"}, "--block-size: 8 is not a power of two"},
             {{"--block-size", "0"}, "--block-size: 0 is not a power of two"},
             {{"--save-calib", tmp.file("t.json")}, "--mode weight-only has no calibration table"}};
  for (const auto& c : bad) {
    SCOPED_TRACE(c.message);
    std::vector<std::string> args = {demo_model(), "--mode", "weight-only", "-o", tmp.file("bad.onnx")};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const auto r = test::run_quantize(args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(tmp.file("bad.onnx")));
  }
  // --bits / --block-size with another mode, and activation flags with weight-only: warnings.
  const auto dyn = test::run_quantize(
      {demo_model(), "--mode", "dynamic", "--bits", "8", "--block-size", "32", "-o", tmp.file("d.onnx")});
  ASSERT_EQ(dyn.exit_code, 0) << dyn.err;
  EXPECT_NE(dyn.err.find("--bits has no effect without --mode weight-only"), std::string::npos) << dyn.err;
  EXPECT_NE(dyn.err.find("--block-size has no effect without --mode weight-only"), std::string::npos) << dyn.err;
  const auto wo = test::run_quantize(
      {demo_model(), "--mode", "weight-only", "--method", "entropy", "--reduce-range", "-o", tmp.file("w.onnx")});
  ASSERT_EQ(wo.exit_code, 0) << wo.err;
  EXPECT_NE(wo.err.find("--method has no effect with --mode weight-only"), std::string::npos) << wo.err;
  EXPECT_NE(wo.err.find("--reduce-range has no effect with --mode weight-only"), std::string::npos) << wo.err;
}

TEST(Quantize, EveryMethodOnMobileNetV2WithExplicitImageFlags) {
  PTQ_REQUIRE_SHARED();
  test::TempDir tmp;
  for (const char* method : {"minmax", "percentile", "entropy", "mse"}) {
    SCOPED_TRACE(method);
    const std::string out = tmp.file(std::string(method) + ".onnx");
    const auto r = test::run_quantize(
        {test::shared_dir() + "/models/mobilenetv2/model.onnx", "--calib", test::shared_dir() + "/data/imagenet-sample",
         "--calib-count", "3", "--resize-short", "256", "--center-crop", "224", "--scale", "0.00392156862745098",
         "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "--channel-order", "rgb", "--layout", "nchw",
         "--method", method, "--threads", "2", "--save-calib", tmp.file("t.json"), "-o", out, "-q"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(fs::exists(out));
    EXPECT_NE(r.out.find("quantized"), std::string::npos);
  }
}

TEST(Quantize, EntropyKeepsSparseReluRangesOnRealData) {
  // mnist-cnn's Relu output is 69 % zeros with a long tail (max 2.50, 99.9th percentile 1.58);
  // the plain TensorRT KL search clipped it to 0.18 and cost 8 points of accuracy.
  PTQ_REQUIRE_SHARED();
  test::TempDir tmp;
  gzFile gz = gzopen((test::shared_dir() + "/data/mnist/t10k-images-idx3-ubyte.gz").c_str(), "rb");
  ASSERT_NE(gz, nullptr);
  std::vector<unsigned char> raw(16 + 64 * 784);
  ASSERT_EQ(gzread(gz, raw.data(), static_cast<unsigned>(raw.size())), static_cast<int>(raw.size()));
  gzclose(gz);
  fs::create_directories(tmp.path() / "digits");
  for (int i = 0; i < 64; ++i) {
    std::vector<float> x(784);
    for (int k = 0; k < 784; ++k) x[static_cast<size_t>(k)] = (raw[16 + static_cast<size_t>(i) * 784 + static_cast<size_t>(k)] / 255.f - 0.5f) / 0.5f;
    char name[32];
    std::snprintf(name, sizeof(name), "%04d.npy", i);
    write_npy((tmp.path() / "digits" / name).string(), Tensor::from_vector<float>({1, 1, 28, 28}, x));
  }
  const auto r = test::run_quantize({test::shared_dir() + "/models/mnist-cnn-opset20-extdata/model.onnx", "--calib",
                                     (tmp.path() / "digits").string(), "--method", "entropy", "--save-calib",
                                     tmp.file("t.json"), "-o", tmp.file("q.onnx"), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string table = test::read_file(tmp.file("t.json"));
  const size_t relu = table.find("\"relu\"");
  ASSERT_NE(relu, std::string::npos);
  const size_t max_at = table.find("\"max\": ", relu);
  EXPECT_GT(std::stod(table.substr(max_at + 7)), 1.0) << table.substr(relu, 80);
}

}  // namespace ptq

namespace ptq {
namespace {

// Issue 15: exclusions that match nothing and flags the method ignores are said, not silent.
TEST(Quantize, WarnsAboutExclusionsMatchingNothingAndIgnoredFlags) {
  test::TempDir tmp;
  const std::string calib = write_digits(tmp, "calib", 8, 1);
  const test::CliResult r = test::run_quantize({demo_model(), "--calib", calib, "-o", tmp.file("a.onnx"),
                                                "--exclude-ops", "Cnv,Relu", "--exclude-nodes", "^no_such_node$",
                                                "--method", "minmax", "--percentile", "99.9", "--asymmetric-calib"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("--exclude-ops: no node has op type 'Cnv'"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("op type 'Relu'"), std::string::npos) << r.err;  // the demo has Relu
  EXPECT_NE(r.err.find("--exclude-nodes: '^no_such_node$' matches no node name"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--percentile has no effect with --method minmax"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--asymmetric-calib has no effect with --method minmax"), std::string::npos) << r.err;
  // Flags that do apply say nothing.
  const test::CliResult ok = test::run_quantize(
      {demo_model(), "--calib", calib, "-o", tmp.file("b.onnx"), "--method", "percentile", "--percentile", "99.9"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.err.find("no effect"), std::string::npos) << ok.err;
  // Dynamic mode takes no calibration method at all.
  const test::CliResult dyn = test::run_quantize(
      {demo_model(), "--mode", "dynamic", "-o", tmp.file("c.onnx"), "--method", "entropy", "--percentile", "99.9",
       "--exclude-ops", "Cnv"});
  ASSERT_EQ(dyn.exit_code, 0) << dyn.err;
  EXPECT_NE(dyn.err.find("--method has no effect with --mode dynamic"), std::string::npos) << dyn.err;
  EXPECT_NE(dyn.err.find("--percentile has no effect with --mode dynamic"), std::string::npos) << dyn.err;
  EXPECT_NE(dyn.err.find("--exclude-ops: no node has op type 'Cnv'"), std::string::npos) << dyn.err;
}

}  // namespace
}  // namespace ptq

namespace ptq {
namespace {

// Issue 15: images calibrated with no preprocessing flag at all get a warning (raw 0..255).
TEST(Quantize, WarnsWhenImagesGetNoPixelPreprocessing) {
  PTQ_REQUIRE_SHARED();
  test::TempDir tmp;
  const std::string model = test::shared_dir() + "/models/mobilenetv2/model.onnx";
  const std::string data = test::shared_dir() + "/data/imagenet-sample";
  const auto raw = test::run_quantize({model, "--calib", data, "--calib-count", "2", "--resize-short", "256",
                                       "--center-crop", "224", "-o", tmp.file("a.onnx")});
  ASSERT_EQ(raw.exit_code, 0) << raw.err;
  EXPECT_NE(raw.err.find("images are fed as raw 0..255 pixels"), std::string::npos) << raw.err;
  const auto ok = test::run_quantize(
      {model, "--calib", data, "--calib-count", "2", "--preprocess", "torchvision", "-o", tmp.file("b.onnx")});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.err.find("raw 0..255"), std::string::npos) << ok.err;
}

}  // namespace
}  // namespace ptq

namespace ptq {

// Mistyped flags and subcommands get the closest known name; far-off ones get no guess.
TEST(Quantize, DidYouMeanForMistypedFlagsAndSubcommands) {
  test::TempDir tmp;
  const std::string m = std::string(PTQ_SOURCE_DIR) + "/models/demo/model.onnx";
  struct Case {
    std::vector<std::string> args;
    const char* hint;
  };
  const std::vector<Case> cases = {
      {{m, "--calbi", "x", "-o", tmp.file("y.onnx")}, "(did you mean --calib?)"},
      {{m, "--methd", "minmax"}, "(did you mean --method?)"},
      {{"inspect", m, "--jsn"}, "(did you mean --json?)"},
      {{"calibrat", m, "--calib", "x"}, "(did you mean quantize calibrate?)"},
      {{"inspct"}, "(did you mean quantize inspect?)"},
      {{"merge-stat", "a.json"}, "(did you mean quantize merge-stats?)"},
  };
  for (const Case& c : cases) {
    const test::CliResult r = test::run_quantize(c.args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(c.hint), std::string::npos) << r.err;
  }
  const test::CliResult far = test::run_quantize({m, "--completely-unknown"});
  EXPECT_EQ(far.exit_code, 1);
  EXPECT_EQ(far.err.find("did you mean"), std::string::npos) << far.err;
}

}  // namespace ptq

namespace ptq {

// Every run ends with a summary (settings, inputs with hashes, sizes, fp32 nodes and why, times);
// the JSON report carries it without the times, so reports stay byte-identical.
TEST(Quantize, SummaryInTerminalAndReports) {
  test::TempDir tmp;
  const std::string m = std::string(PTQ_SOURCE_DIR) + "/models/demo/model.onnx";
  const std::string demo = std::string(PTQ_SOURCE_DIR) + "/models/demo";
  const test::CliResult plain = test::run_quantize(
      {m, "--calib", demo + "/calib", "-o", tmp.file("a.onnx"), "--exclude-ops", "Gemm", "-q"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  for (const char* line : {"time: load ", "summary\n",
                           "settings: mode static, method auto: ", "effort default, bias-correction on, empirical-bias-correction on, depthwise-scales on, target ort-x86",
                           "model: " , "(sha256 ", "size: fp32 ", "nodes: 3 quantized, 2 kept in fp32:",
                           "node 'fc' (Gemm): excluded by --exclude-nodes/--exclude-ops",
                           // The MaxPool only feeds the fp32 Gemm (through Flatten): a Q/DQ would only round.
                           "node 'pool2' (MaxPool): read only by fp32 nodes, so it stays fp32 too"})
    EXPECT_NE(plain.out.find(line), std::string::npos) << line << "\n" << plain.out;
  const test::CliResult rep = test::run_quantize({m, "--calib", demo + "/calib", "--eval", demo + "/eval", "--labels",
                                                   demo + "/labels.tsv", "-o", tmp.file("b.onnx"), "--report",
                                                   tmp.file("r.json"), "--report-md", tmp.file("r.md"), "--max-drop", "5", "-q"});
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  const nlohmann::json j = nlohmann::json::parse(test::read_file(tmp.file("r.json")));
  ASSERT_TRUE(j.contains("summary")) << j.dump();
  const nlohmann::json& s = j["summary"];
  EXPECT_EQ(s["int8_bytes"].get<uint64_t>(), fs::file_size(tmp.file("b.onnx")));
  EXPECT_EQ(s["fp32_bytes"].get<uint64_t>(), fs::file_size(m));
  EXPECT_EQ(s["quantized_nodes"].get<int>(), 5);
  EXPECT_EQ(s["settings"]["target"], "ort-x86");
  EXPECT_NE(s["inputs"]["labels"].get<std::string>().find("(sha256 "), std::string::npos);
  EXPECT_FALSE(s.contains("time")) << "timings would make reports differ between runs";
  EXPECT_NE(test::read_file(tmp.file("r.md")).find("## Summary"), std::string::npos);
  EXPECT_EQ(rep.out.rfind("PASSED") + 7, rep.out.size()) << "the gate line stays last:\n" << rep.out;
}

}  // namespace ptq

namespace ptq {

// `compare` after Relu/Clip folding compares like with like: the int8 Conv output (clipped by its
// Q range) against the fp32 activation output, giving the SQNR quantize's own report gives.
TEST(Quantize, CompareMatchesFoldedActivationsLikeWithLike) {
  test::TempDir tmp;
  const std::string m = std::string(PTQ_SOURCE_DIR) + "/models/demo/model.onnx";
  const std::string demo = std::string(PTQ_SOURCE_DIR) + "/models/demo";
  ASSERT_EQ(test::run_quantize({m, "--calib", demo + "/calib", "--eval", demo + "/eval", "-o", tmp.file("q.onnx"),
                                "--report", tmp.file("q.json"), "-q"}).exit_code, 0);
  ASSERT_EQ(test::run_quantize({"compare", m, tmp.file("q.onnx"), "--data", demo + "/eval", "--report",
                                tmp.file("c.json"), "-q"}).exit_code, 0);
  const auto layer = [&](const std::string& file, const std::string& node) {
    const nlohmann::json report = nlohmann::json::parse(test::read_file(file));
    for (const nlohmann::json& l : report["layers"])
      if (l["node"] == node) return l;
    return nlohmann::json();
  };
  for (const char* node : {"conv1", "conv2"}) {
    const nlohmann::json q = layer(tmp.file("q.json"), node), c = layer(tmp.file("c.json"), node);
    ASSERT_FALSE(c.is_null()) << node;
    EXPECT_EQ(c["op"], "Conv+Relu") << node;
    EXPECT_NEAR(c["sqnr_db"].get<double>(), q["sqnr_db"].get<double>(), 0.01) << node;
    EXPECT_GT(c["sqnr_db"].get<double>(), 30.0) << node;
  }
}

}  // namespace ptq

namespace ptq {

// An output SQNR below 10 dB gets a warning naming the output, the worst layers and what to try.
TEST(Quantize, LowOutputSqnrIsWarnedWithTheWorstLayers) {
  test::TempDir tmp;
  const std::string m = std::string(PTQ_SOURCE_DIR) + "/models/demo/model.onnx";
  const std::string demo = std::string(PTQ_SOURCE_DIR) + "/models/demo";
  ASSERT_EQ(test::run_quantize({m, "--calib", demo + "/calib", "-o", tmp.file("a.onnx"), "--save-calib",
                                tmp.file("t.json"), "-q"}).exit_code, 0);
  // Ranges 100x too narrow: everything saturates.
  nlohmann::json t = nlohmann::json::parse(test::read_file(tmp.file("t.json")));
  for (auto& [name, r] : t["tensors"].items()) {
    r["min"] = r["min"].get<double>() / 100;
    r["max"] = r["max"].get<double>() / 100;
  }
  test::write_file(tmp.file("bad.json"), t.dump());
  const test::CliResult bad = test::run_quantize({m, "--load-calib", tmp.file("bad.json"), "--eval", demo + "/eval",
                                                   "-o", tmp.file("b.onnx"), "-q"});
  ASSERT_EQ(bad.exit_code, 0) << bad.err;
  EXPECT_NE(bad.out.find("warning: low output SQNR ('logits' "), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("lowest layers: "), std::string::npos) << bad.out;
  const test::CliResult good = test::run_quantize({m, "--load-calib", tmp.file("t.json"), "--eval", demo + "/eval",
                                                    "-o", tmp.file("c.onnx"), "-q"});
  EXPECT_EQ(good.out.find("low output SQNR"), std::string::npos) << good.out;
}

}  // namespace ptq

namespace ptq {

// The default placement search on YOLOX-nano: quantizing the Focus stem alone costs as much output
// SQNR as quantizing everything (channels up to 98 next to channels of 0.8), so the search keeps
// it fp32, the report's SQNR rises well above --effort fast's, and the table records the choice.
TEST(Quantize, PlacementSearchKeepsYoloxStemFp32) {
  PTQ_REQUIRE_SHARED();
  test::TempDir tmp;
  const std::vector<std::string> images = test::shared_imagenet_images();
  ASSERT_GE(images.size(), 10u);
  fs::create_directories(tmp.file("calib"));
  for (size_t i = 0; i < 10; ++i)
    fs::create_symlink(images[i], tmp.file("calib/" + fs::path(images[i]).filename().string()));
  const std::string model = test::shared_dir() + "/models/yolox-nano/model.onnx";
  const auto run = [&](const std::string& tag, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {model, "--calib", tmp.file("calib"), "--letterbox", "416x416", "--letterbox-pad", "114",
                                     "--channel-order", "bgr", "-o", tmp.file(tag + ".onnx"), "--eval", tmp.file("calib"),
                                     "--sensitivity-samples", "0", "--report", tmp.file(tag + ".json"),
                                     "--save-calib", tmp.file(tag + "-table.json")};
    args.insert(args.end(), extra.begin(), extra.end());
    const test::CliResult r = test::run_quantize(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r;
  };
  const test::CliResult fast = run("fast", {"--effort", "fast"});
  const test::CliResult def = run("default", {});
  EXPECT_NE(def.err.find("placement search: 4 node(s) kept fp32"), std::string::npos) << def.err;
  EXPECT_NE(def.out.find("node 'Conv_44' (Conv): kept fp32 by the placement search"), std::string::npos) << def.out;
  const auto sqnr = [&](const std::string& tag) {
    const nlohmann::json j = nlohmann::json::parse(test::read_file(tmp.file(tag + ".json")));
    return j["outputs"][0]["sqnr_db"].get<double>();
  };
  EXPECT_LT(sqnr("fast"), 9.0);
  EXPECT_GT(sqnr("default"), sqnr("fast") + 3.0);
  const nlohmann::json table = nlohmann::json::parse(test::read_file(tmp.file("default-table.json")));
  EXPECT_EQ(table["placement_search"]["fp32_nodes"].size(), 4u);
  EXPECT_FALSE(nlohmann::json::parse(test::read_file(tmp.file("fast-table.json"))).contains("placement_search"));
  // The table alone rebuilds the same model.
  const test::CliResult again = test::run_quantize({model, "--load-calib", tmp.file("default-table.json"), "-o",
                                                    tmp.file("again.onnx"), "-q"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(test::read_file(tmp.file("again.onnx")) == test::read_file(tmp.file("default.onnx")));
}

}  // namespace ptq

namespace ptq {
namespace {

// `run --repeat N --profile`: one line per node that produced a value (the fused Relus' time
// goes to the Relu line that outputs it), slowest first, and the per-op sums.
TEST(Run, ProfileListsTheNodesSlowestFirst) {
  test::TempDir tmp;
  const std::string input = "input=" + std::string(PTQ_SOURCE_DIR) + "/models/demo/calib/0000.npy";
  const test::CliResult r =
      test::run_quantize({"run", demo_model(), "-i", input, "-o", tmp.file("out"), "--repeat", "3", "--profile",
                          "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("repeat 3 threads 1:"), std::string::npos) << r.err;
  const size_t head = r.err.find("profile: ");
  ASSERT_NE(head, std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" Gemm ", head), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" MaxPool ", head), std::string::npos) << r.err;
  std::vector<double> ms;
  size_t lines = 0;
  for (size_t at = r.err.find("\n  ", head); at != std::string::npos; at = r.err.find("\n  ", at + 1)) {
    ++lines;
    ms.push_back(std::stod(r.err.substr(at + 1, 12)));
  }
  EXPECT_GE(lines, 5u) << r.err;  // Conv+Relu fused twice: at least the Relus, pools, Flatten, Gemm
  EXPECT_TRUE(std::is_sorted(ms.rbegin(), ms.rend())) << r.err;
  const test::CliResult bare = test::run_quantize({"run", demo_model(), "-i", input, "-o", tmp.file("out2"), "--profile"});
  EXPECT_EQ(bare.exit_code, 1) << bare.err;
  EXPECT_NE(bare.err.find("--profile needs --repeat"), std::string::npos) << bare.err;
}

}  // namespace
}  // namespace ptq

namespace ptq {

namespace {

// `count` samples of shape [1, 2, 8, 8], uniform in [lo, hi), as s10.npy, s11.npy, ... in `dir`.
void write_random_samples(const fs::path& dir, int count, unsigned seed, float lo, float hi) {
  fs::create_directories(dir);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int i = 0; i < count; ++i) {
    std::vector<float> x(128);
    for (float& v : x) v = u(rng);
    write_npy((dir / ("s" + std::to_string(10 + i) + ".npy")).string(), Tensor::from_vector<float>({1, 2, 8, 8}, x));
  }
}

}  // namespace

// A MobileNetV2-style pair whose expansion channels span 20x (the depthwise weights bring the small
// ones back up, so their input's rounding dominates the output error): the depthwise input gets
// per-channel grids (kept: the output SQNR rises), the model records them, and both quantize's
// report and `compare` measure the scaled tensor in fp32 units.
TEST(Quantize, DepthwiseInputScalesAreKeptRecordedAndReportedInFp32Units) {
  test::TempDir tmp;
  const std::string model = tmp.file("dw.onnx");
  onnx_io::save_model(onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 8, 8] x) => (float[1, 6, 8, 8] y) {
      w1 = Constant <value = float[6, 2, 1, 1] {2, 1, 0.1, 0.05, -0.05, 0.1, 0.1, -0.02, 1.5, 1, 0.08, 0.04}> ()
      b1 = Constant <value = float[6] {0.5, 0.02, 0.01, 0.3, 0.02, 0.01}> ()
      w2 = Constant <value = float[6, 1, 3, 3] {1, 2, 1, 0, 1, 0, -1, 1, 2, 10, 10, 10, 20, 20, 20, 0, 0, 20,
                                                 40, 0, 20, 20, 20, 0, -20, 40, 20, 5, 10, 5, 0, 5, 0, -5, 5, 10,
                                                 0.5, 0.5, 0.5, 1, 1, 1, 0, 0, 1, 40, 0, 20, 20, 20, 0, -20, 40, 20}> ()
      lo = Constant <value = float {0}> ()
      hi = Constant <value = float {6}> ()
      e = Conv <kernel_shape = [1, 1]> (x, w1, b1)
      a = Clip (e, lo, hi)
      y = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1], group = 6> (a, w2)
    }
  )"), model);
  const fs::path data = tmp.path() / "data";
  write_random_samples(data, 12, 11, 0.f, 1.f);
  const auto run = [&](const std::string& tag, std::vector<std::string> extra) {
    std::vector<std::string> args = {model, "--calib", data.string(), "--eval", data.string(), "-o", tmp.file(tag + ".onnx"),
                                     "--report", tmp.file(tag + ".json")};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_quantize(args);
  };
  const test::CliResult with = run("with", {"--save-calib", tmp.file("with.table.json")}),
                        without = run("without", {"--no-depthwise-scales"});
  ASSERT_EQ(with.exit_code, 0) << with.err;
  ASSERT_EQ(without.exit_code, 0) << without.err;
  EXPECT_NE(with.out.find("depthwise-scales on"), std::string::npos) << with.out;
  EXPECT_EQ(with.err.find("depthwise input scales not kept"), std::string::npos) << with.err;
  const auto recorded = [](const std::string& path) {
    size_t n = 0;
    for (const auto& [k, v] : onnx_io::load_model(path).metadata_props) n += k.rfind(report::kChannelScaleKey, 0) == 0;
    return n;
  };
  EXPECT_EQ(recorded(tmp.file("with.onnx")), 1u);
  EXPECT_EQ(recorded(tmp.file("without.onnx")), 0u);
  // The table records the maxima: --load-calib rebuilds the same bytes, unless told not to scale.
  for (const bool scales : {true, false}) {
    std::vector<std::string> args = {model, "--load-calib", tmp.file("with.table.json"), "-o", tmp.file("loaded.onnx"), "-q"};
    if (!scales) args.push_back("--no-depthwise-scales");
    ASSERT_EQ(test::run_quantize(args).exit_code, 0);
    EXPECT_EQ(recorded(tmp.file("loaded.onnx")), scales ? 1u : 0u);
    if (scales) {
      EXPECT_EQ(test::read_file(tmp.file("loaded.onnx")), test::read_file(tmp.file("with.onnx")));
    }
  }
  const auto json = [&](const std::string& file) { return nlohmann::json::parse(test::read_file(file)); };
  const nlohmann::json rw = json(tmp.file("with.json")), ro = json(tmp.file("without.json"));
  EXPECT_GT(rw["outputs"][0]["sqnr_db"].get<double>(), ro["outputs"][0]["sqnr_db"].get<double>() + 3.0)
      << rw["outputs"] << ro["outputs"];
  ASSERT_EQ(test::run_quantize({"compare", model, tmp.file("with.onnx"), "--data", data.string(), "--report",
                                tmp.file("c.json"), "-q"}).exit_code, 0);
  const nlohmann::json rc = json(tmp.file("c.json"));
  ASSERT_FALSE(rw["layers"].empty());
  const nlohmann::json& first = rw["layers"][0];  // the expansion Conv, whose output is scaled
  EXPECT_GT(first["sqnr_db"].get<double>(), 25.0) << first;
  bool compared = false;
  for (const nlohmann::json& l : rc["layers"])
    if (l["tensor"] == first["tensor"]) {
      compared = true;
      EXPECT_NEAR(l["sqnr_db"].get<double>(), first["sqnr_db"].get<double>(), 0.01) << l;
    }
  EXPECT_TRUE(compared) << rc["layers"];
}

// A HardSwish written out as x * Clip(x + 3, 0, 6) (PP-LCNet): its input keeps the method's range
// unless --fit-written-out-hardswish fits the low end through the activation, which is 0 below -3.
TEST(Quantize, FitWrittenOutHardSwishMovesItsInputsLowEndToMinusThree) {
  test::TempDir tmp;
  const std::string model = tmp.file("hs.onnx");
  onnx_io::save_model(onnx_io::parse_model_text(R"(
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 8, 8] x) => (float[1, 2, 8, 8] y) {
      w1 = Constant <value = float[3, 2, 1, 1] {1, 0.5, -0.8, 0.3, 0.6, -1}> ()
      w2 = Constant <value = float[2, 3, 1, 1] {0.5, -0.2, 0.1, 0.3, 0.4, -0.6}> ()
      three = Constant <value = float {3}> ()
      lo = Constant <value = float {0}> ()
      hi = Constant <value = float {6}> ()
      c = Conv <kernel_shape = [1, 1]> (x, w1)
      p = Add (c, three)
      k = Clip (p, lo, hi)
      h = Mul (c, k)
      y = Conv <kernel_shape = [1, 1]> (h, w2)
    }
  )"), model);
  const fs::path data = tmp.path() / "data";
  write_random_samples(data, 8, 5, -8.f, 8.f);
  const auto low_end = [&](const std::string& tag, std::vector<std::string> extra) {
    std::vector<std::string> args = {model, "--calib", data.string(), "--method", "percentile", "--effort", "fast",
                                     "-o", tmp.file(tag + ".onnx"), "--save-calib", tmp.file(tag + ".json")};
    args.insert(args.end(), extra.begin(), extra.end());
    const test::CliResult r = test::run_quantize(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("hardswish int8 with fitted ranges") != std::string::npos, !extra.empty()) << r.out;
    return nlohmann::json::parse(test::read_file(tmp.file(tag + ".json")))["tensors"]["c"]["min"].get<double>();
  };
  const double plain = low_end("plain", {}), fitted = low_end("fitted", {"--fit-written-out-hardswish"});
  EXPECT_LT(plain, -8.0);
  EXPECT_GT(fitted, -3.5);
  EXPECT_LT(fitted, -2.5);
}

// Bias correction is kept only where the output SQNR rises on both halves of the --effort rows,
// each corrected with the other half's means; the note gives the four figures. On mobilenetv2 with
// ImageNet photos 32-35 first, one half gains 0.29 dB and the other loses 0.16: the averaged
// figure rises (the gate before 2026-12-07 kept it), the rule now drops it; photos 8-11 gain on both.
TEST(Quantize, BiasCorrectionIsKeptOnlyWhereBothHalvesMeasureBetter) {
  PTQ_REQUIRE_SHARED();
  const std::vector<std::string> images = test::shared_imagenet_images();
  ASSERT_GE(images.size(), 36u);
  const std::regex note(
      R"(bias correction (not )?kept: output SQNR ([0-9.]+) and ([0-9.]+) dB with it, ([0-9.]+) and ([0-9.]+) dB without, on two halves of 4 calibration rows)");
  for (const size_t first : {32u, 8u}) {
    SCOPED_TRACE(first);
    test::TempDir tmp;
    fs::create_directories(tmp.file("calib"));
    for (size_t i = 0; i < 4; ++i)
      fs::create_symlink(images[first + i], tmp.file("calib/" + std::to_string(i) + ".jpg"));
    const test::CliResult r = test::run_quantize(
        {test::shared_dir() + "/models/mobilenetv2/model.onnx", "--calib", tmp.file("calib"), "--resize-short", "256",
         "--center-crop", "224", "--scale", "0.00392156862745098", "--mean", "0.485,0.456,0.406", "--std",
         "0.229,0.224,0.225", "--channel-order", "rgb", "--threads", "2", "-o", tmp.file("m.onnx"), "-v"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.err, m, note)) << r.err;
    const double with_a = std::stod(m[2]), with_b = std::stod(m[3]), without_a = std::stod(m[4]),
                 without_b = std::stod(m[5]);
    const bool kept = !m[1].matched;
    EXPECT_EQ(kept, with_a > without_a && with_b > without_b) << m[0];
    if (first == 32) {
      EXPECT_FALSE(kept) << m[0];
      EXPECT_GT(with_a + with_b, without_a + without_b) << m[0];  // the average alone would keep it
    } else {
      EXPECT_TRUE(kept) << m[0];
    }
  }
}

}  // namespace ptq
