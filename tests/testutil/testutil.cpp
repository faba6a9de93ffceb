// Implementation of the shared test helpers.
#include "testutil.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "ptq/ir/graph.h"

namespace ptq::test {

namespace fs = std::filesystem;

std::string shared_dir() {
  const char* env = std::getenv("PTQ_SHARED");
  std::string dir = env ? env : PTQ_SHARED_DEFAULT;
  return fs::is_directory(fs::path(dir) / "models") ? dir : "";
}

Tensor random_tensor(Dims dims, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t = Tensor::empty(DType::kFloat, std::move(dims));
  for (size_t i = 0; i < t.numel(); ++i) t.mutable_data<float>()[i] = d(rng);
  return t;
}

std::vector<std::string> shared_models() {
  std::vector<std::string> r;
  const std::string dir = shared_dir();
  if (dir.empty()) return r;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "models"))
    if (fs::exists(e.path() / "model.onnx")) r.push_back((e.path() / "model.onnx").string());
  std::sort(r.begin(), r.end());
  return r;
}

std::vector<std::string> shared_imagenet_images() {
  std::vector<std::string> r;
  const std::string dir = shared_dir();
  if (dir.empty()) return r;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "data" / "imagenet-sample"))
    if (e.path().extension() == ".jpg") r.push_back(e.path().string());
  std::sort(r.begin(), r.end());
  return r;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("ptq-test-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

namespace {
std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

CliResult run_quantize(const std::vector<std::string>& args) {
  const char* env = std::getenv("PTQ_QUANTIZE");
  const char* bin = env ? env : PTQ_QUANTIZE_DEFAULT;
  CliResult r;
  TempDir tmp;
  std::string cmd = quote(bin);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " >" + quote(tmp.file("out")) + " 2>" + quote(tmp.file("err")) + " </dev/null";
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(tmp.file("out"));
  r.err = read_file(tmp.file("err"));
  return r;
}

namespace {

std::string diff_attr(const ir::Attribute& a, const ir::Attribute& b) {
  if (a.name != b.name || a.type != b.type) return "attribute " + a.name + " name/type";
  if (a.f != b.f && !(a.f != a.f && b.f != b.f)) return "attribute " + a.name + " f";
  if (a.i != b.i || a.s != b.s || a.ints != b.ints || a.strings != b.strings || a.opaque != b.opaque)
    return "attribute " + a.name + " value";
  if (a.floats.size() != b.floats.size() ||
      (!a.floats.empty() && std::memcmp(a.floats.data(), b.floats.data(), a.floats.size() * 4)))
    return "attribute " + a.name + " floats";
  if (!!a.t != !!b.t || (a.t && !a.t->bit_equal(*b.t))) return "attribute " + a.name + " tensor";
  if (a.tensors.size() != b.tensors.size()) return "attribute " + a.name + " tensors";
  for (size_t i = 0; i < a.tensors.size(); ++i)
    if (!a.tensors[i].bit_equal(b.tensors[i])) return "attribute " + a.name + " tensors";
  if (!!a.g != !!b.g) return "attribute " + a.name + " graph";
  if (a.g) {
    std::string d = diff_graphs(*a.g, *b.g);
    if (!d.empty()) return "subgraph " + a.name + ": " + d;
  }
  if (a.graphs.size() != b.graphs.size()) return "attribute " + a.name + " graphs";
  for (size_t i = 0; i < a.graphs.size(); ++i) {
    std::string d = diff_graphs(*a.graphs[i], *b.graphs[i]);
    if (!d.empty()) return "subgraph " + a.name + ": " + d;
  }
  return "";
}

std::vector<std::string> names(const ir::Graph& g, const std::vector<ir::ValueId>& ids) {
  std::vector<std::string> r;
  for (ir::ValueId v : ids) r.push_back(v == ir::kNone ? "" : g.value(v).name);
  return r;
}

}  // namespace

std::string diff_graphs(const ir::Graph& a, const ir::Graph& b) {
  if (a.name != b.name) return "graph name";
  if (names(a, a.inputs) != names(b, b.inputs)) return "graph inputs";
  if (names(a, a.outputs) != names(b, b.outputs)) return "graph outputs";
  if (names(a, a.initializers) != names(b, b.initializers)) return "initializer list";
  for (ir::ValueId v : a.initializers) {
    const ir::ValueId w = b.find(a.value(v).name);
    if (!a.value(v).constant->bit_equal(*b.value(w).constant))
      return "initializer '" + a.value(v).name + "' data";
  }
  for (ir::ValueId v : a.value_ids()) {
    const ir::ValueId w = b.find(a.value(v).name);
    if (w == ir::kNone) return "value '" + a.value(v).name + "' missing";
    if (!(a.value(v).type == b.value(w).type)) return "value '" + a.value(v).name + "' type";
  }
  const auto na = a.topological_order(), nb = b.topological_order();
  if (na.size() != nb.size()) return "node count";
  for (size_t i = 0; i < na.size(); ++i) {
    const ir::Node& x = a.node(na[i]);
    const ir::Node& y = b.node(nb[i]);
    if (x.name != y.name || x.op_type != y.op_type || x.domain != y.domain)
      return "node " + std::to_string(i) + " (" + x.name + ")";
    if (names(a, x.inputs) != names(b, y.inputs) || names(a, x.outputs) != names(b, y.outputs))
      return x.label() + " wiring";
    if (x.attributes.size() != y.attributes.size()) return x.label() + " attribute count";
    for (size_t k = 0; k < x.attributes.size(); ++k) {
      std::string d = diff_attr(x.attributes[k], y.attributes[k]);
      if (!d.empty()) return x.label() + " " + d;
    }
  }
  return "";
}

}  // namespace ptq::test
