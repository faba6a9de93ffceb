// `quantize calibrate` (statistics of one shard of the data) and `quantize merge-stats` (shards -> table).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli_common.h"
#include "ptq/calib/calib_stats.h"
#include "ptq/core/atomic_file.h"
#include "ptq/core/error.h"
#include "quantize_flags.h"

namespace ptq::cli {

void add_calibrate(CLI::App& sub, Run& run) {
  struct Flags : QuantizeFlags {
    std::string shard = "1/1", save_stats, save_calib;
  };
  auto f = std::make_shared<Flags>();
  f->o.method = "percentile";  // a shard cannot measure --method auto's candidates on all the data
  add_calibration_flags(sub, *f);
  sub.add_option("--shard", f->shard,
                 "I/N: calibrate on samples I-1, I-1+N, ... of --calib (shards numbered from 1), for merge-stats")
      ->default_str("1/1");
  sub.add_option("--save-stats", f->save_stats, "Write the shard's statistics (JSON) for quantize merge-stats");
  sub.add_option("--save-calib", f->save_calib, "Write the calibration table (JSON; the whole data, no --shard)");
  sub.callback([f, &sub, &run] {
    run = [f, &sub] {
      const pipeline::QuantizeOptions o = to_quantize_options(*f, sub);
      const calib::Shard shard = calib::parse_shard(f->shard, "--shard");
      PTQ_CHECK(!f->save_stats.empty() || !f->save_calib.empty(), UsageError,
                "quantize calibrate writes --save-stats PART.json (or --save-calib TABLE.json): give one");
      PTQ_CHECK(f->save_calib.empty() || shard.count == 1, UsageError,
                "--save-calib: a shard's ranges are not the data's; write --save-stats and merge with quantize merge-stats");
      const std::vector<PathArg> outputs = {{"--save-stats", f->save_stats}, {"--save-calib", f->save_calib}};
      check_output_safety({{"model", o.model_path}, {"--calib", o.calib_data}}, outputs);
      std::vector<std::string> declared;
      for (const PathArg& a : outputs)
        if (!a.path.empty()) {
          AtomicFile probe(a.path);  // unwritable outputs fail before calibration, not after
          declared.push_back(a.path);
        }
      ptq::declare_outputs(declared);
      const calib::CalibStats stats = pipeline::calibrate_shard(o, shard);
      if (!f->save_stats.empty()) calib::save_calib_stats(stats, f->save_stats);
      if (!f->save_calib.empty()) calib::save_calib_table(calib::ranges_from(stats), f->save_calib);
      std::printf("calibrated shard %zu/%zu: %zu samples, %zu tensors (method %s)\n", shard.index, shard.count,
                  stats.samples, stats.tensors.size(), stats.method.c_str());
      for (const PathArg& a : outputs)
        if (!a.path.empty()) std::printf("wrote %s\n", a.path.c_str());
      return 0;
    };
  });
}

void add_merge_stats(CLI::App& sub, Run& run) {
  struct Flags {
    std::vector<std::string> parts;
    std::string output;
  };
  auto f = std::make_shared<Flags>();
  sub.add_option("parts", f->parts, "Statistics of every shard (quantize calibrate --save-stats)")->required();
  sub.add_option("-o,--output", f->output, "Where to write the calibration table (JSON) for --load-calib")->required();
  sub.callback([f, &run] {
    run = [f] {
      std::vector<PathArg> inputs;
      for (const std::string& p : f->parts) inputs.push_back({"statistics", p});
      check_output_safety(inputs, {{"-o", f->output}});
      { AtomicFile probe(f->output); }
      ptq::declare_outputs({f->output});
      std::vector<calib::CalibStats> parts;
      for (const std::string& p : f->parts) parts.push_back(calib::load_calib_stats(p));
      const calib::CalibStats merged = calib::merge_stats(parts, f->parts);
      calib::save_calib_table(calib::ranges_from(merged), f->output);
      std::printf("merged %zu shards (%zu samples, %zu tensors, method %s)\nwrote %s\n", parts.size(), merged.samples,
                  merged.tensors.size(), merged.method.c_str(), f->output.c_str());
      return 0;
    };
  });
}

}  // namespace ptq::cli
