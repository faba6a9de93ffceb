// Calibration datasets: a folder or list file turned into a stream of validated input samples.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ptq/core/tensor.h"
#include "ptq/data/input_spec.h"
#include "ptq/data/preprocess.h"
#include "ptq/ir/graph.h"

namespace ptq::data {

// Options a CLI or config file fills (each field has a flag parser in preprocess.h/input_spec.h).
struct DataOptions {
  Preprocess preprocess;               // for image files only
  size_t calib_count = 0;              // use the first N samples in sorted order; 0: all
  std::vector<InputShape> input_shapes;  // fix symbolic dims ("data:1x3x224x224")
  // Drop samples holding NaN/Inf (counted in Dataset::skipped_nonfinite()) instead of failing.
  bool skip_nonfinite = false;
};

// How the files were found (for logs).
enum class DataLayout {
  kFiles,         // one file per sample: .npy / .pb / images (one input), .npz (keys = inputs)
  kInputFolders,  // one subfolder per input name, the i-th file of each forms sample i
  kTestDataSets,  // test_data_set_*/input_N.pb (N = runtime input index, or the tensor's name)
  kListFile,      // a text file of paths, one sample per line (see open_dataset)
  kMemory,        // tensors handed over in memory (memory_dataset; the Python package)
};
const char* layout_name(DataLayout layout);

// One sample held in memory: input name -> tensor ("" binds to the only runtime input).
using SampleTensors = std::map<std::string, Tensor>;
using MemorySamples = std::vector<SampleTensors>;

struct Sample {
  size_t index = 0;                       // 0-based position in the dataset
  std::map<std::string, Tensor> inputs;   // every runtime input, validated
  std::vector<std::string> sources;       // the file(s) this sample was read from
  std::string source_str() const;         // sources joined by ", " (for messages)
};

// Streams samples one at a time; nothing is read before next() asks for it (except the file
// listing and, for list files, existence checks).
class Dataset {
 public:
  // One sample's files: path, how to read it, and which input it feeds.
  // kMemory: sample `position` of the in-memory samples; `path` ("calib[3]") names it in messages.
  enum class FileKind { kNpy, kNpz, kTensorProto, kImage, kMemory };
  struct File {
    std::string path;
    FileKind kind = FileKind::kNpy;
    int input = -1;     // runtime input index; -1: decided by content (.npz keys, .pb names)
    int position = -1;  // N of input_N.pb (test_data_set layout); the sample index for kMemory
  };
  using Plan = std::vector<std::vector<File>>;  // samples in order

  Dataset(Plan plan, DataLayout layout, std::vector<InputSpec> inputs, const DataOptions& options,
          std::shared_ptr<const MemorySamples> memory = nullptr);

  // Samples the dataset will try to read (after calib_count); skipped ones are not subtracted.
  size_t size() const { return plan_.size(); }
  // The next valid sample, or nullopt at the end. Throws IoError naming the file and input on
  // bad data (UsageError for preprocessing flags that do not fit the model).
  std::optional<Sample> next();
  // Starts over (for calibration methods that make several passes).
  void rewind() { cursor_ = 0; skipped_ = 0; }
  // Reads planned sample `index` without moving the cursor; nullopt when it is skipped for
  // NaN/Inf. Const and thread-safe: parallel readers (ordered_parallel.h) decode their own samples.
  std::optional<Sample> read_at(size_t index) const { return read(index); }
  // The plan index next() reads next.
  size_t position() const { return cursor_; }
  // For parallel readers: the plan was consumed up to `cursor`, skipping `skipped` samples.
  void advance(size_t cursor, size_t skipped) {
    cursor_ = cursor;
    skipped_ += skipped;
  }
  // Samples dropped so far for NaN/Inf (only with skip_nonfinite).
  size_t skipped_nonfinite() const { return skipped_; }
  const std::vector<InputSpec>& inputs() const { return inputs_; }
  DataLayout layout() const { return layout_; }
  const Plan& plan() const { return plan_; }
  // Every count-th planned sample from index-th (0-based): one shard of a split calibration.
  Dataset every_nth(size_t index, size_t count) const;

 private:
  // Reads one planned sample; nullopt when it is skipped for non-finite values.
  std::optional<Sample> read(size_t index) const;
  Tensor read_image(const File& f, const InputSpec& spec) const;
  Plan plan_;
  DataLayout layout_;
  std::vector<InputSpec> inputs_;
  DataOptions options_;
  ImageTransform transform_;
  std::shared_ptr<const MemorySamples> memory_;  // kMemory files read from here
  size_t cursor_ = 0;
  size_t skipped_ = 0;
};

// Opens `path`:
//  - a directory holding data files (.npy, .npz, .pb, .jpg/.jpeg/.png/.bmp; other files are
//    ignored), one sample per file in byte-wise sorted name order; or one subfolder per input
//    name; or test_data_set_* folders (numeric order);
//  - a single data file (one sample);
//  - otherwise a list file: one sample per line, paths relative to the list file, empty lines and
//    '#' comments skipped; a line is a file, a test_data_set-style folder, or for several inputs
//    comma-separated paths in runtime input order or as name=path.
// Validates the layout against graph.runtime_inputs() (with options.input_shapes applied).
// IoError for missing/empty/inconsistent data, UsageError for bad options.
Dataset open_dataset(const std::string& path, const ir::Graph& graph, const DataOptions& options);

// Samples already in memory (the Python package), validated against graph.runtime_inputs() exactly
// as files are (input names, dtype, shape, NaN/Inf; options.input_shapes and calib_count apply,
// preprocessing does not). Sample i is named "LABEL[i]" in messages ("calib[3]: input 'x':
// expected float [1,3,224,224], found double [...]"). IoError when there is no sample.
Dataset memory_dataset(std::shared_ptr<const MemorySamples> samples, const std::string& label,
                       const ir::Graph& graph, const DataOptions& options);

}  // namespace ptq::data
