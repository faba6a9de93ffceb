// `quantize compare A.onnx B.onnx --data DATA`: the accuracy report for any two models.
#include <CLI/CLI.hpp>

#include "cli_common.h"
#include "data_flags.h"
#include <filesystem>

#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "ptq/onnx_io/load.h"
#include "ptq/report/accuracy.h"

namespace ptq::cli {

void add_compare(CLI::App& sub, Run& run) {
  struct Flags {
    std::string a, b;
    size_t threads = 0;
    DataFlags data;
    ReportFlags report;
  };
  auto f = std::make_shared<Flags>();
  sub.add_option("reference", f->a, "Reference model (A), e.g. the fp32 model")->required();
  sub.add_option("test", f->b, "Model compared with it (B), e.g. an int8 model")->required();
  sub.add_option("--data", f->report.eval, "Evaluation data (a folder or list file, as --calib)")->required();
  sub.add_option("--threads", f->threads, "Threads for the reference runtime (default: all cores)")
      ->check(finite_range(1, kMaxThreads));
  add_data_flags(sub, f->data);
  add_report_flags(sub, f->report, false);
  sub.callback([f, &run] {
    run = [f] {
      report::AccuracyOptions o = to_accuracy_options(f->report, to_data_options(f->data));
      o.model_a = f->a;
      o.model_b = f->b;
      o.fp32_runtime.threads = o.int8_runtime.threads = f->threads;
      check_output_safety({{"reference", f->a}, {"test", f->b}, {"--data", f->report.eval}, {"--labels", f->report.labels}},
                          {{"--report", f->report.json}, {"--report-html", f->report.html}, {"--report-md", f->report.md}});
      report::validate(o);
      const ir::Model a = onnx_io::load_model(f->a);
      const ir::Model b = onnx_io::load_model(f->b);
      for (const ir::Model* m : {&a, &b})
        for (const std::string& file : m->external_data_files)
          note_input_file((std::filesystem::path(m->source_path).parent_path() / file).string());
      const report::Report r = with_context(f->b, [&] { return report::compare_models(a, b, o); });
      return finish_report(r, f->report);
    };
  });
}

}  // namespace ptq::cli
