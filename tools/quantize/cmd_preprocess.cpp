// `quantize preprocess DATA -o DIR`: writes the tensors ptq feeds the model, one .npy per sample and input.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli_common.h"
#include "data_flags.h"
#include "ptq/core/error.h"
#include "ptq/core/npy.h"
#include "ptq/data/dataset.h"
#include "ptq/ir/graph.h"
#include "ptq/pipeline/quantize.h"

namespace ptq::cli {
namespace {

// Without --model: one float image input "input", batch 1, three channels, any size.
ir::Graph image_graph(data::Layout layout) {
  ir::Graph g;
  ir::TypeInfo t;
  t.dtype = DType::kFloat;
  t.known = true;
  const ir::Dim h{-1, "height"}, w{-1, "width"}, c{3, ""}, n{1, ""};
  t.shape = layout == data::Layout::kNhwc ? ir::Shape{n, h, w, c} : ir::Shape{n, c, h, w};
  g.add_input("input", t);
  return g;
}

}  // namespace

void add_preprocess(CLI::App& sub, Run& run) {
  struct Flags {
    std::string data, out_dir, model;
    DataFlags flags;
  };
  auto f = std::make_shared<Flags>();
  sub.add_option("data", f->data, "Data as for --calib (a folder, list file or file)")->required();
  sub.add_option("-o,--output-dir", f->out_dir, "Folder for the tensors (NNNNNN_NAME.npy per sample; "
                                                "one subfolder per input for several inputs)")->required();
  sub.add_option("--model", f->model, "Read inputs as this model's (names, dtype, channels, shapes); default: "
                                      "one float image input, batch 1, 3 channels");
  add_data_flags(sub, f->flags);
  sub.callback([f, &run] {
    run = [f] {
      const data::DataOptions options = to_data_options(f->flags);
      std::vector<PathArg> inputs = {{"data", f->data}};
      if (!f->model.empty()) inputs.push_back({"--model", f->model});
      ir::Model model;
      if (!f->model.empty()) model = pipeline::load_prepared(f->model);
      else model.graph = image_graph(data::resolve(options.preprocess).layout);
      data::Dataset ds = data::open_dataset(f->data, model.graph, options);
      // Output names from the plan: sample order is name order, so DIR reads back as --calib DATA.
      const std::vector<data::InputSpec>& specs = ds.inputs();
      std::vector<PathArg> outputs;
      const auto path_of = [&](size_t sample, size_t input) {
        namespace fs = std::filesystem;
        const std::string stem = fs::path(ds.plan()[sample].front().path).stem().string();
        char index[24];
        std::snprintf(index, sizeof(index), "%06zu_", sample);
        fs::path p(f->out_dir);
        if (specs.size() > 1) p /= fs::path(file_name_for(specs[input].name)).stem();
        return (p / file_name_for(index + stem)).string();
      };
      for (size_t s = 0; s < ds.size(); ++s)
        for (size_t i = 0; i < specs.size(); ++i) outputs.push_back({"-o", path_of(s, i)});
      check_output_safety(inputs, outputs);
      std::error_code ec;
      for (const PathArg& o : outputs) {
        std::filesystem::create_directories(std::filesystem::path(o.path).parent_path(), ec);
        PTQ_CHECK(!ec, IoError, f->out_dir, ": cannot create directory: ", ec.message());
      }
      size_t written = 0;
      while (auto sample = ds.next()) {
        for (size_t i = 0; i < specs.size(); ++i) write_npy(path_of(sample->index, i), sample->inputs.at(specs[i].name));
        ++written;
      }
      std::printf("wrote %zu samples to %s\n", written, f->out_dir.c_str());
      return 0;
    };
  });
}

}  // namespace ptq::cli
