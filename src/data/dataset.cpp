// Dataset: reads one planned sample at a time, binds tensors to inputs and validates them.
#include "ptq/data/dataset.h"

#include <filesystem>

#include "dataset_plan.h"
#include "ptq/core/error.h"
#include "ptq/core/npy.h"
#include "ptq/data/image.h"
#include "ptq/data/npz.h"
#include "ptq/onnx_io/tensor_file.h"

namespace ptq::data {
namespace {

int find_input(const std::vector<InputSpec>& inputs, const std::string& name) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].name == name) return int(i);
  return -1;
}

std::string input_names(const std::vector<InputSpec>& inputs) {
  std::string s;
  for (const InputSpec& i : inputs) s += (s.empty() ? "" : ", ") + i.name;
  return s;
}

// numpy names positional arrays arr_0, arr_1, ... (np.savez(f, a, b)): bind them by position
// when no input carries that name.
int positional_key(const std::string& key, size_t n_inputs) {
  if (key.rfind("arr_", 0) != 0 || key.size() == 4 || key.size() > 10) return -1;
  int idx = 0;
  for (size_t i = 4; i < key.size(); ++i) {
    if (key[i] < '0' || key[i] > '9') return -1;
    idx = idx * 10 + (key[i] - '0');
  }
  return size_t(idx) < n_inputs ? idx : -1;
}

// Image channels from the model's channel dim (1 -> gray, else RGB).
int image_channels(const InputSpec& spec, Layout layout) {
  if (!spec.shape || spec.shape->size() < 3) return 3;
  const ir::Shape& s = *spec.shape;
  const ir::Dim& c = layout == Layout::kNchw ? s[s.size() - 3] : s[s.size() - 1];
  if (!c.is_static()) return 3;
  PTQ_CHECK(c.value == 1 || c.value == 3, IoError, "input '", spec.name, "' has ", c.value,
            " channels in ", shape_str(s), " (", layout == Layout::kNchw ? "NCHW" : "NHWC",
            "); images give 1 or 3 (is --layout right?)");
  return int(c.value);
}

}  // namespace

const char* layout_name(DataLayout layout) {
  switch (layout) {
    case DataLayout::kFiles: return "one file per sample";
    case DataLayout::kInputFolders: return "one folder per input";
    case DataLayout::kTestDataSets: return "test_data_set folders";
    case DataLayout::kListFile: return "list file";
    case DataLayout::kMemory: return "in memory";
  }
  return "?";
}

std::string Sample::source_str() const {
  std::string s;
  for (const std::string& p : sources) s += (s.empty() ? "" : ", ") + p;
  return s;
}

Dataset::Dataset(Plan plan, DataLayout layout, std::vector<InputSpec> inputs,
                 const DataOptions& options, std::shared_ptr<const MemorySamples> memory)
    : plan_(std::move(plan)), layout_(layout), inputs_(std::move(inputs)), options_(options),
      transform_(resolve(options.preprocess)), memory_(std::move(memory)) {}

Dataset Dataset::every_nth(size_t index, size_t count) const {
  PTQ_ASSERT(count > 0 && index < count, "shard index out of range");
  Plan part;
  for (size_t i = index; i < plan_.size(); i += count) part.push_back(plan_[i]);
  return Dataset(std::move(part), layout_, inputs_, options_, memory_);
}

Tensor Dataset::read_image(const File& f, const InputSpec& spec) const {
  const int channels = with_context(f.path, [&] { return image_channels(spec, transform_.layout); });
  // A uint8 image input takes the pixels as they are; anything else gets float32.
  const DType dtype = spec.dtype == DType::kUint8 && transform_.is_identity_math() ? DType::kUint8
                                                                                   : DType::kFloat;
  Tensor t = load_image(f.path, transform_, channels, dtype);
  return with_context(f.path, [&] {
    // Geometry mismatches are the usual image mistake: say which flags fix them.
    try {
      return conform_tensor(spec, std::move(t));
    } catch (const IoError& e) {
      throw IoError(e.message() + " (set the image size with --resize-short/--resize/"
                                  "--letterbox and --center-crop, or a preset)");
    }
  });
}

std::optional<Sample> Dataset::read(size_t index) const {
  Sample s;
  s.index = index;
  std::vector<std::string> from(inputs_.size());  // the file each input came from
  bool nonfinite = false;
  const auto bind = [&](int idx, Tensor t, const std::string& path) {
    const InputSpec& spec = inputs_[size_t(idx)];
    PTQ_CHECK(from[size_t(idx)].empty(), IoError, "input '", spec.name, "' is given twice (",
              from[size_t(idx)], " and ", path, ")");
    from[size_t(idx)] = path;
    t = conform_tensor(spec, std::move(t));
    if (has_nonfinite(t)) {
      PTQ_CHECK(options_.skip_nonfinite, IoError, "input '", spec.name,
                "' contains NaN or Inf (skip such samples with --skip-nonfinite)");
      nonfinite = true;
    }
    s.inputs[spec.name] = std::move(t);
  };
  for (const File& f : plan_[index]) {
    s.sources.push_back(f.path);
    // Each reader names the file in its own errors; binding and checks get it as context.
    switch (f.kind) {
      case FileKind::kNpy: {
        Tensor t = read_npy(f.path);
        with_context(f.path, [&] { bind(f.input, std::move(t), f.path); });
        break;
      }
      case FileKind::kImage: {
        Tensor t = read_image(f, inputs_[size_t(f.input)]);
        with_context(f.path, [&] { bind(f.input, std::move(t), f.path); });
        break;
      }
      case FileKind::kTensorProto: {
        Tensor t = onnx_io::read_tensor_file(f.path);
        with_context(f.path, [&] {
          int idx = f.input;
          if (idx < 0) {
            // test_data_set: input_N binds to runtime input N, unless the tensor names an input.
            idx = t.name.empty() ? -1 : find_input(inputs_, t.name);
            if (idx < 0) idx = f.position;
            PTQ_CHECK(idx >= 0 && size_t(idx) < inputs_.size(), IoError, "input_", f.position,
                      ".pb has no matching input: the model has ", inputs_.size(),
                      " runtime inputs (", input_names(inputs_), ")");
          }
          bind(idx, std::move(t), f.path);
        });
        break;
      }
      case FileKind::kNpz:
        for (NamedTensor& nt : read_npz(f.path)) {
          with_context(f.path, [&] {
            int idx = find_input(inputs_, nt.name);
            if (idx < 0) idx = positional_key(nt.name, inputs_.size());
            PTQ_CHECK(idx >= 0, IoError, "array '", nt.name,
                      "' does not name a model input (inputs: ", input_names(inputs_), ")");
            bind(idx, std::move(nt.tensor), f.path + ":" + nt.name);
          });
        }
        break;
      case FileKind::kMemory:
        for (const auto& entry : memory_->at(size_t(f.position))) {
          // Not a structured binding: clang 14 (the fuzz build) cannot capture those in a lambda.
          const std::string& name = entry.first;
          const Tensor& tensor = entry.second;
          with_context(f.path, [&] {
            int idx = find_input(inputs_, name);
            if (name.empty()) {
              PTQ_CHECK(inputs_.size() == 1, IoError, "an array without an input name needs a single-input model (inputs: ",
                        input_names(inputs_), "); give a dict keyed by input name");
              idx = 0;
            }
            PTQ_CHECK(idx >= 0, IoError, "key '", name, "' does not name a model input (inputs: ", input_names(inputs_), ")");
            bind(idx, tensor, f.path);
          });
        }
        break;
    }
  }
  for (size_t i = 0; i < inputs_.size(); ++i)
    PTQ_CHECK(!from[i].empty(), IoError, s.source_str(), ": no data for input '", inputs_[i].name,
              "' (inputs: ", input_names(inputs_), ")");
  if (nonfinite) return std::nullopt;
  return s;
}

std::optional<Sample> Dataset::next() {
  while (cursor_ < plan_.size()) {
    const size_t index = cursor_++;
    std::optional<Sample> s = read(index);
    if (s) return s;
    ++skipped_;
  }
  return std::nullopt;
}

Dataset open_dataset(const std::string& path, const ir::Graph& graph, const DataOptions& options) {
  std::vector<InputSpec> inputs = make_input_specs(graph, options.input_shapes);
  PTQ_CHECK(!inputs.empty(), ModelError, "the model has no runtime inputs to feed calibration data to");
  resolve(options.preprocess);  // flag conflicts surface now, not at the first image
  DataLayout layout = DataLayout::kFiles;
  Dataset::Plan plan = detail::plan_dataset(path, inputs, &layout);
  if (options.calib_count > 0 && plan.size() > options.calib_count) plan.resize(options.calib_count);
  return Dataset(std::move(plan), layout, std::move(inputs), options);
}

Dataset memory_dataset(std::shared_ptr<const MemorySamples> samples, const std::string& label,
                       const ir::Graph& graph, const DataOptions& options) {
  PTQ_ASSERT(samples, "no samples");
  std::vector<InputSpec> inputs = make_input_specs(graph, options.input_shapes);
  PTQ_CHECK(!inputs.empty(), ModelError, "the model has no runtime inputs to feed calibration data to");
  PTQ_CHECK(!samples->empty(), IoError, label, ": no samples");
  Dataset::Plan plan;
  for (size_t i = 0; i < samples->size(); ++i)
    plan.push_back({{str_cat(label, "[", i, "]"), Dataset::FileKind::kMemory, -1, int(i)}});
  if (options.calib_count > 0 && plan.size() > options.calib_count) plan.resize(options.calib_count);
  DataOptions o = options;
  o.preprocess = {};  // images only
  return Dataset(std::move(plan), DataLayout::kMemory, std::move(inputs), o, std::move(samples));
}

}  // namespace ptq::data
