// ptq._ptq: quantize and compare as Python calls, with outputs checked and committed as the CLI does.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <mutex>

#include "options.h"
#include "samples.h"
#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "ptq/core/file_checks.h"
#include "ptq/data/input_spec.h"
#include "ptq/data/preprocess.h"
#include "ptq/onnx_io/load.h"
#include "ptq/passes/smoothquant.h"
#include "ptq/pipeline/quantize.h"
#include "ptq/report/accuracy.h"
#include "ptq/report/report.h"

namespace py = pybind11;

namespace ptq::python {
namespace {

// One OutputSet may be active at a time (atomic_file.h): calls from several threads queue here.
std::mutex g_run;

// The labels in-memory data carries in messages ("calib[3]: input 'x': ...").
constexpr const char* kCalibLabel = "calib";
constexpr const char* kEvalLabel = "eval";
constexpr const char* kDataLabel = "data";

// A path (str) or data to read now (anything else).
struct DataArg {
  std::string path;
  std::shared_ptr<const data::MemorySamples> samples;
};

DataArg data_arg(const py::object& obj, const char* label) {
  DataArg d;
  if (obj.is_none()) return d;
  if (py::isinstance<py::str>(obj)) d.path = obj.cast<std::string>();
  else d.samples = materialize(obj, label);
  return d;
}

void check_range(const char* flag, double v, double lo, double hi) {
  PTQ_CHECK(std::isfinite(v) && v >= lo && v <= hi, UsageError, flag, ": '", v, "' is not a finite number in [", lo,
            ", ", hi, "]");
}

DType parse_int_type(const std::string& flag, const std::string& v) {
  if (v == "int8") return DType::kInt8;
  if (v == "uint8") return DType::kUint8;
  throw UsageError(str_cat(flag, ": '", v, "' is not int8 or uint8"));
}

// --calib-count, --input-shape, --skip-nonfinite and the image flags (as (name, value) pairs).
data::DataOptions data_options(Options& opt) {
  data::DataOptions o;
  for (const auto& [name, value] : opt.get<std::vector<std::pair<std::string, std::string>>>("preprocess", {}))
    data::set_preprocess_option(o.preprocess, name, value);
  for (const std::string& s : opt.get<std::vector<std::string>>("input_shapes", {}))
    o.input_shapes.push_back(data::parse_input_shape("--input-shape", s));
  o.calib_count = opt.get<size_t>("calib_count", 0);
  o.skip_nonfinite = opt.get<bool>("skip_nonfinite", false);
  return o;
}

size_t threads(Options& opt) {
  const auto t = opt.opt<long long>("threads");
  if (t) check_range("--threads", double(*t), 1, 256);
  return t ? size_t(*t) : 0;
}

// The report flags (data_flags.cpp's to_accuracy_options for the CLI).
report::AccuracyOptions accuracy_options(Options& opt, const DataArg& eval, const data::DataOptions& data,
                                         bool quantize_flags) {
  report::AccuracyOptions o;
  o.data_path = eval.samples ? "" : eval.path;
  o.samples = eval.samples;
  o.data = data;
  o.data.calib_count = 0;
  o.max_samples = opt.get<size_t>("eval_count", 0);
  o.labels_path = opt.get<std::string>("labels", "");
  o.task = report::parse_task(opt.get<std::string>("task", "auto"));
  o.budget.max_drop = opt.opt<double>("max_drop");
  o.budget.min_agreement = opt.opt<double>("min_agreement");
  o.budget.min_sqnr = opt.opt<double>("min_sqnr");
  if (o.budget.max_drop) check_range("--max-drop", *o.budget.max_drop, -100, 100);
  if (o.budget.min_agreement) check_range("--min-agreement", *o.budget.min_agreement, 0, 100);
  if (o.budget.min_sqnr) check_range("--min-sqnr", *o.budget.min_sqnr, -1000, 1000);
  o.layer_samples = opt.get<size_t>("layer_samples", 128);
  if (quantize_flags) {
    o.sensitivity_samples = opt.get<size_t>("sensitivity_samples", 16);
    o.auto_fallback = opt.get<bool>("auto_fallback", false);
    o.max_fallback = opt.get<size_t>("max_fallback", 10);
  }
  const std::string mode = opt.get<std::string>("int8_mode", "integer");
  PTQ_CHECK(mode == "integer" || mode == "fake-quant", UsageError, "--int8-mode: '", mode,
            "' is not integer or fake-quant");
  o.int8_runtime.qdq_mode = mode == "integer" ? runtime::QdqMode::kIntegerKernel : runtime::QdqMode::kFakeQuant;
  o.int8_execution = mode == "integer" ? "integer-kernels" : "qdq-fake-quant";
  o.log = [](const std::string& line) { spdlog::info("{}", line); };
  return o;
}

struct ReportFiles {
  std::string json, html, md;
};

ReportFiles report_files(Options& opt) {
  return {opt.get<std::string>("report", ""), opt.get<std::string>("report_html", ""),
          opt.get<std::string>("report_md", "")};
}

py::dict report_dict(const report::Report& r) {
  py::dict d;
  d["json"] = report::to_json(r);
  d["text"] = report::render_text(r);
  d["gate"] = r.gate.checked ? py::object(py::str(r.gate.line())) : py::object(py::none());
  d["passed"] = r.gate.passed && r.gate.sanity.empty();
  return d;
}

void check_writable(const std::vector<std::string>& paths) {
  for (const std::string& p : paths)
    if (!p.empty()) AtomicFile probe(p);
}

py::dict quantize(const std::string& model, const std::string& output, const py::object& calib,
                  const py::object& eval, const py::dict& kwargs) {
  Options opt(kwargs);
  pipeline::QuantizeOptions o;
  o.model_path = model;
  o.output_path = output;
  PTQ_CHECK(!o.model_path.empty(), UsageError, "no model given (see quantize --help)");
  PTQ_CHECK(!o.output_path.empty(), UsageError, "-o/--output is required");
  o.mode = pipeline::parse_mode(opt.get<std::string>("mode", "static"));
  const quant::Target target = quant::parse_target(opt.get<std::string>("target", "ort-x86"));
  quant::QuantConfig c = quant::config_for(target);
  c.exclude_nodes = opt.get<std::string>("exclude_nodes", "");
  c.exclude_ops = opt.get<std::vector<std::string>>("exclude_ops", {});
  c.preset = quant::parse_preset(opt.get<std::string>("preset", "auto"));
  if (const auto e = opt.opt<std::string>("elementwise")) c.quantize_elementwise = quant::parse_int8_or_fp32("--elementwise", *e);
  if (const auto h = opt.opt<std::string>("hardswish")) c.quantize_hardswish = quant::parse_int8_or_fp32("--hardswish", *h);
  if (const auto u = opt.opt<std::string>("uint8_weights")) c.uint8_weights = quant::parse_uint8_weights(*u);
  o.method = opt.get<std::string>("method", o.method);
  if (const auto p = opt.opt<double>("percentile")) {
    check_range("--percentile", *p, 50, 100);
    o.params.percentile = *p;
  }
  if (const auto s = opt.opt<double>("smoothquant")) {
    check_range("--smoothquant", *s, 0, 1);
    o.smoothquant = float(*s);
  }
  o.no_smoothquant = opt.get<bool>("no_smoothquant", false);
  PTQ_CHECK(!(o.smoothquant && o.no_smoothquant), UsageError, "--no-smoothquant excludes --smoothquant");
  const auto activation_type = opt.opt<std::string>("activation_type");
  const bool activation_symmetric = opt.get<bool>("activation_symmetric", false);
  const auto weight_type = opt.opt<std::string>("weight_type");
  PTQ_CHECK(!(activation_type || activation_symmetric || weight_type) || target == quant::Target::kGeneric,
            UsageError, "--activation-type, --activation-symmetric and --weight-type need --target generic");
  if (activation_type) c.activation_type = parse_int_type("--activation-type", *activation_type);
  if (activation_symmetric) c.activation_symmetry = quant::Symmetry::kSymmetric;
  if (weight_type) c.weight_type = parse_int_type("--weight-type", *weight_type);
  c.per_channel = !opt.get<bool>("per_tensor", false);
  if (const auto rr = opt.opt<bool>("reduce_range")) c.reduce_range = *rr ? quant::ReduceRange::kOn : quant::ReduceRange::kOff;
  o.config = c;
  o.params.moving_average = opt.get<bool>("minmax_average", false);
  o.params.symmetric = !opt.get<bool>("asymmetric_calib", false);
  o.params.activation_type = c.activation_type;
  o.params.activation_symmetry = c.activation_symmetry;
  o.threads = threads(opt);
  o.data = data_options(opt);
  o.load_calib = opt.get<std::string>("load_calib", "");
  o.save_calib = opt.get<std::string>("save_calib", "");
  o.force = opt.get<bool>("force", false);
  const bool external_data = opt.get<bool>("external_data", false);
  if (external_data) o.save.external_data = onnx_io::ExternalData::kAlways;
  const ReportFiles files = report_files(opt);
  const bool accuracy = opt.get<bool>("accuracy", false);
  // The data last: a bad option fails before a long iterator is read.
  const DataArg cal = data_arg(calib, kCalibLabel);
  const DataArg ev = data_arg(eval, kEvalLabel);
  o.calib_data = cal.samples ? kCalibLabel : cal.path;
  o.calib_samples = cal.samples;
  o.check_accuracy = accuracy;
  o.accuracy = accuracy_options(opt, ev, o.data, true);
  if (ev.samples) o.accuracy.data_path = kEvalLabel;
  opt.check_all_used();

  pipeline::QuantizeResult r;
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(g_run);
    OutputSet outputs;
    // The output-safety rule (file_checks.h), as `quantize` checks it.
    std::vector<PathArg> outs = {{"-o", o.output_path},
                                 {"--save-calib", o.save_calib},
                                 {"--report", files.json},
                                 {"--report-html", files.html},
                                 {"--report-md", files.md}};
    if (external_data) outs.push_back({"-o (external data)", o.output_path + ".data"});
    check_output_safety({{"model", o.model_path},
                         {"--calib", cal.path},
                         {"--eval", ev.path},
                         {"--labels", o.accuracy.labels_path},
                         {"--load-calib", o.load_calib}},
                        outs);
    check_writable({o.output_path, o.save_calib, files.json, files.html, files.md});
    std::vector<std::string> declared;
    for (const PathArg& a : outs) declared.push_back(a.path);
    declare_outputs(declared);
    r = pipeline::quantize(o);
    if (r.report) report::write_reports(*r.report, files.json, files.html, files.md);
    outputs.commit();
  }
  py::dict d;
  d["output"] = o.output_path;
  d["mode"] = o.mode == pipeline::Mode::kDynamic ? "dynamic" : "static";
  d["quantized_nodes"] = r.quantized_nodes;
  d["activation_pairs"] = r.activation_pairs;
  d["weights"] = r.weights;
  d["biases"] = r.biases;
  d["folded_activations"] = r.folded_activations;
  d["placement"] = r.placement;
  d["fp32"] = r.fp32;
  d["notes"] = r.notes;
  d["prepared"] = r.prepared;
  d["report"] = r.report ? py::object(report_dict(*r.report)) : py::object(py::none());
  return d;
}

py::dict compare(const std::string& model_a, const std::string& model_b, const py::object& data,
                 const py::dict& kwargs) {
  Options opt(kwargs);
  const size_t n_threads = threads(opt);
  const data::DataOptions data_opts = data_options(opt);
  const ReportFiles files = report_files(opt);
  const DataArg d = data_arg(data, kDataLabel);
  report::AccuracyOptions o = accuracy_options(opt, d, data_opts, false);
  if (d.samples) o.data_path = kDataLabel;
  PTQ_CHECK(!o.data_path.empty(), UsageError, "--data is required");
  opt.check_all_used();
  o.model_a = model_a;
  o.model_b = model_b;
  o.fp32_runtime.threads = o.int8_runtime.threads = n_threads;
  report::Report r;
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(g_run);
    OutputSet outputs;
    check_output_safety({{"reference", model_a}, {"test", model_b}, {"--data", d.path}, {"--labels", o.labels_path}},
                        {{"--report", files.json}, {"--report-html", files.html}, {"--report-md", files.md}});
    report::validate(o);
    const ir::Model a = onnx_io::load_model(model_a);
    const ir::Model b = onnx_io::load_model(model_b);
    for (const ir::Model* m : {&a, &b})
      for (const std::string& file : m->external_data_files)
        note_input_file((std::filesystem::path(m->source_path).parent_path() / file).string());
    r = with_context(model_b, [&] { return report::compare_models(a, b, o); });
    report::write_reports(r, files.json, files.html, files.md);
    outputs.commit();
  }
  return report_dict(r);
}

// Library logs on stderr as the CLI prints them ("warning: ..."), warnings and errors only by default.
void set_log_level(const std::string& level) {
  const spdlog::level::level_enum l = spdlog::level::from_str(level);
  PTQ_CHECK(level == spdlog::level::to_string_view(l).data() || level == "warning", UsageError, "log level '", level,
            "' is not trace, debug, info, warning, error or off");
  spdlog::default_logger()->set_level(l);
}

void setup_logging() {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_pattern("%^%l%$: %v");
  auto logger = std::make_shared<spdlog::logger>("ptq", console);
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

const char* error_class(ExitCode code) {
  switch (code) {
    case ExitCode::kUsage: return "UsageError";
    case ExitCode::kInvalidModel: return "ModelError";
    case ExitCode::kUnsupported: return "UnsupportedError";
    case ExitCode::kDataOrIo: return "DataError";
    case ExitCode::kInternal: return "InternalError";
    default: return "Error";
  }
}

}  // namespace
}  // namespace ptq::python

PYBIND11_MODULE(_ptq, m) {
  using namespace ptq::python;
  m.doc() = "ptq's C++ library (use the ptq package, not this module)";
  m.attr("__version__") = PTQ_VERSION;
  setup_logging();
  // ptq::Error subclasses become ptq.errors classes carrying the same message (what the CLI prints).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ptq::Error& e) {
      py::object cls = py::module_::import("ptq.errors").attr(error_class(e.code()));
      PyErr_SetObject(cls.ptr(), py::str(e.what()).ptr());
    }
  });
  m.def("quantize", &quantize, py::arg("model"), py::arg("output"), py::arg("calib"), py::arg("eval"),
        py::arg("options"));
  m.def("compare", &compare, py::arg("model_a"), py::arg("model_b"), py::arg("data"), py::arg("options"));
  m.def("set_log_level", &set_log_level, py::arg("level"));
}
